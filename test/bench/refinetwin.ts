// Our side of the PyTorch DPO twin (test/bench/dpo_ref.py; issue 11, item 4): test/cli/refine.test.ts's
// protocol (refineprotocol.ts) handed to an independent implementation and its results scored here.
//   export DIR          the start adapter (start.json), the 64 corrections as the test makes them,
//                       each with its split (48 train / 16 held out, as `--val-split 0.25` splits them)
//                       and the token ids our trainer gives it (pairs.jsonl), and the start's scores
//   score DIR A.json..  the "!" share (per sampling seed, our sampler) and the unstyled validation NLL
//                       of adapters that dpo_ref.py wrote, one JSON line each
//   ours DIR 'JSON'     our refinement of the exported pairs with each TrainOptions of the list (the
//                       test's --batch 8 --val-split 0.25 and seed 0 unless given; anchorWeight and
//                       editWeight 0 unless given, the anchor's answers then sampled as the CLI samples
//                       them), the refined adapter written to
//                       DIR/ours-lr<lr>-e<epochs>-a<rpo alpha>-w<anchor>-E<edit>-s<seed>.json for
//                       dpo_ref.py --score and --against, and its scores
//   npm run build && node out/test/bench/refinetwin.js export .test-tmp/twin

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AdapterWeights } from '../../src/adapter/types';
import { splitValidation } from '../../src/data/batches';
import { toPreferencePairs } from '../../src/data/examples';
import { readTrainingFile } from '../../src/data/source';
import { Engine } from '../../src/engine/engine';
import { referenceAnswers } from '../../src/generate/answers';
import { loadModel } from '../../src/model/load';
import { TRAIN_DEFAULTS } from '../../src/train/defaults';
import { anchorSampling, refine } from '../../src/train/refine';
import type { TrainOptions } from '../../src/train/trainer';
import { END_ID, refineProtocol } from './refineprotocol';
import { STORIES } from '../model/paths';

/** The answers that the test's corrections rewrite come from this seed. */
const ANSWER_SEED = 1;

interface AdapterJson {
  prefix: number[];
  gates: number[];
  tokens: number;
  startLayer: number;
}

const toJson = (a: AdapterWeights): AdapterJson => ({
  prefix: [...a.prefix],
  gates: [...a.gates],
  tokens: a.tokens,
  startLayer: a.startLayer,
});
const fromJson = (j: AdapterJson): AdapterWeights => ({
  prefix: Float32Array.from(j.prefix),
  gates: Float32Array.from(j.gates),
  tokens: j.tokens,
  startLayer: j.startLayer,
});
const readAdapterJson = (file: string) => fromJson(JSON.parse(fs.readFileSync(file, 'utf8')) as AdapterJson);

async function main() {
  const [mode, dir, ...rest] = process.argv.slice(2);
  if (!['export', 'score', 'ours'].includes(mode) || !dir) throw new Error('usage: refinetwin.js export|score|ours DIR ...');
  const engine = await Engine.create(await loadModel(STORIES));
  const protocol = await refineProtocol(engine);
  const scores = async (a: AdapterWeights) => {
    const shares = (await protocol.shares(a)).map((s) => +s.toFixed(3));
    return { shares, meanShare: +(shares.reduce((x, y) => x + y, 0) / shares.length).toFixed(3), nll: +(await protocol.nll(a)).toFixed(4) };
  };
  if (mode === 'export') {
    fs.mkdirSync(dir, { recursive: true });
    const records = await protocol.corrections(protocol.start, ANSWER_SEED);
    const pairs = toPreferencePairs(records, engine.model.tokenizer, { maxLen: 512, endId: END_ID });
    if (pairs.items.length !== records.length) throw new Error(`${records.length - pairs.items.length} pairs dropped`);
    const held = new Set(splitValidation([...records.keys()], 0.25, 0).validation);
    const lines = records.map((r, i) => {
      const { chosen, rejected } = pairs.items[i];
      return JSON.stringify({
        ...r,
        split: held.has(i) ? 'held' : 'train',
        chosenIds: chosen.ids,
        rejectedIds: rejected.ids,
        targetsFrom: chosen.isTarget.indexOf(1),
      });
    });
    fs.writeFileSync(path.join(dir, 'pairs.jsonl'), lines.join('\n') + '\n');
    fs.writeFileSync(path.join(dir, 'start.json'), JSON.stringify(toJson(protocol.start)));
    console.log(JSON.stringify({ exported: dir, pairs: records.length, held: held.size, start: await scores(protocol.start) }));
  } else if (mode === 'score') {
    for (const file of rest) console.log(JSON.stringify({ adapter: file, ...(await scores(readAdapterJson(file))) }));
  } else {
    const start = readAdapterJson(path.join(dir, 'start.json'));
    const file = path.join(dir, 'pairs.jsonl');
    const data = readTrainingFile(file);
    const runs = JSON.parse(rest[0]) as TrainOptions[];
    for (const run of runs) {
      const opts: TrainOptions = { batchSize: 8, valSplit: 0.25, seed: 0, anchorWeight: 0, editWeight: 0, ...run };
      const started = Date.now();
      const anchor = anchorSampling(start, data, opts);
      if (anchor) opts.anchor = await referenceAnswers(engine, anchor.pairs, start, anchor);
      const { adapter, summary } = await refine(engine, data, start, opts);
      const seconds = (Date.now() - started) / 1000;
      const d = TRAIN_DEFAULTS.refine;
      const out = path.join(
        dir,
        `ours-lr${opts.lr ?? d.lr}-e${opts.epochs ?? d.epochs}-a${opts.rpoAlpha ?? d.rpoAlpha}-w${opts.anchorWeight}-E${opts.editWeight}-s${opts.seed}.json`,
      );
      fs.writeFileSync(out, JSON.stringify(toJson(adapter)));
      const { anchor: _answers, ...options } = opts;
      console.log(
        JSON.stringify({
          options,
          adapter: out,
          ...(await scores(adapter)),
          heldOutDpoLoss: [summary.initialValLoss, summary.valLoss],
          seconds,
        }),
      );
    }
  }
  await engine.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

// test/cli/refine.test.ts's protocol over several seeds (issue 11, item 4): from the start adapter
// (refineprotocol.ts), 64 shout corrections of its own answers (answer seed), refinement with the
// defaults of `aligner refine` plus the given overrides (training seed; the anchor's answers sampled
// as the CLI samples them), then the "!" share of 50 samples per sampling seed and the unstyled
// validation NLL, before and after. One JSON line per run.
//   npm run build && node out/test/bench/refineseeds.js '[{"answers":1,"seed":0},{"answers":2,"seed":1,"options":{"lr":0.05}}]'

import * as fs from 'node:fs';
import * as path from 'node:path';
import { readTrainingFile } from '../../src/data/source';
import { Engine } from '../../src/engine/engine';
import { referenceAnswers } from '../../src/generate/answers';
import { loadModel } from '../../src/model/load';
import { anchorSampling, refine } from '../../src/train/refine';
import type { TrainOptions } from '../../src/train/trainer';
import { refineProtocol } from './refineprotocol';
import { STORIES, tempDir } from '../model/paths';

interface Run {
  /** Seed of the answers that the corrections rewrite. */
  answers: number;
  /** Training seed (shuffling, the anchor's answers). */
  seed: number;
  options?: TrainOptions;
  /** Anchor answers per pair in place of TRAIN_DEFAULTS.refine.anchorAnswers. */
  anchorAnswers?: number;
}

async function main() {
  const runs = JSON.parse(process.argv[2]) as Run[];
  const engine = await Engine.create(await loadModel(STORIES));
  const protocol = await refineProtocol(engine);
  const { start } = protocol;
  const r3 = (x: number) => +x.toFixed(3);
  const before = await protocol.shares(start);
  const nllBefore = await protocol.nll(start);
  const file = path.join(tempDir(), 'pairs.jsonl');
  for (const run of runs) {
    const records = await protocol.corrections(start, run.answers);
    fs.writeFileSync(file, records.map((p) => JSON.stringify(p)).join('\n'));
    const data = readTrainingFile(file);
    // The test's flags: --batch 8 --val-split 0.25 (48 pairs trained, 16 held out).
    const opts: TrainOptions = { batchSize: 8, valSplit: 0.25, seed: run.seed, ...run.options };
    const started = Date.now();
    const anchor = anchorSampling(start, data, opts);
    if (anchor)
      opts.anchor = await referenceAnswers(engine, anchor.pairs, start, { ...anchor, perPair: run.anchorAnswers ?? anchor.perPair });
    const { adapter, summary } = await refine(engine, data, start, opts);
    const seconds = (Date.now() - started) / 1000;
    const after = await protocol.shares(adapter);
    const nllAfter = await protocol.nll(adapter);
    const gains = after.map((s, i) => r3(s - before[i]));
    console.log(
      JSON.stringify({
        ...run,
        pairs: records.length,
        before: before.map(r3),
        after: after.map(r3),
        gains,
        meanGain: r3(gains.reduce((a, b) => a + b, 0) / gains.length),
        nll: [+nllBefore.toFixed(4), +nllAfter.toFixed(4)],
        dNll: +(nllAfter - nllBefore).toFixed(4),
        heldOutDpoLoss: [summary.initialValLoss, summary.valLoss].map((x) => +(x ?? NaN).toFixed(4)),
        seconds,
      }),
    );
  }
  await engine.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

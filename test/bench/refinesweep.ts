// The trade-off of refining from corrections (issue 11, item 4): for each setting, the "!" share
// gained by samples (mean over refineprotocol.ts's sampling seeds) against the validation NLL
// lost on unstyled stories, at every evaluated epoch, with where the NLL goes (sentence-final
// ".", "!", the token after ".", the rest). Same
// setup as test/cli/refine.test.ts (64 shout corrections of the adapter's own answers, 48 trained,
// 16 held out), with its own training loop so that it can freeze tensors or add terms; `self` is
// the anchor of TrainOptions (256 fresh answers of the start adapter), `anchor` the rejected
// answers with the corrected tokens masked, `edit` the chosen answers' corrected tokens alone.
//   npm run build && node out/test/bench/refinesweep.js '[{"lr":0.1,"alpha":30,"epochs":2,"self":30}]'

import type { AdapterWeights } from '../../src/adapter/types';
import { makeBatches, makePairBatches, splitValidation, chosenRows, type TokenBatch } from '../../src/data/batches';
import { toExamples, toPreferencePairs, type PreferencePair } from '../../src/data/examples';
import { Engine } from '../../src/engine/engine';
import { loadModel } from '../../src/model/load';
import { AdamW } from '../../src/train/adamw';
import { clipGradNorm } from '../../src/train/clip';
import { makeSchedule } from '../../src/train/schedule';
import { sampleStories } from './style';
import { LENGTH, PROMPT, punctuationIds, refineProtocol, SAMPLING_SEEDS, validationExamples } from './refineprotocol';
import { STORIES } from '../model/paths';

interface Config {
  lr: number;
  epochs: number;
  beta?: number;
  alpha?: number;
  anchor?: number;
  tensors?: 'all' | 'gates' | 'prefix';
  start?: 'brief' | 'base';
  batch?: number;
  wd?: number;
  seed?: number;
  evalEvery?: number;
  diag?: boolean;
  dpo?: number;
  edit?: number;
  self?: number;
}

async function main() {
  const configs = JSON.parse(process.argv[2]) as Config[];
  const engine = await Engine.create(await loadModel(STORIES));
  const tok = engine.model.tokenizer;
  const protocol = await refineProtocol(engine);
  const brief = protocol.start;
  const base: AdapterWeights = { ...brief, prefix: brief.prefix.slice(), gates: new Float32Array(brief.gates.length) };
  const valEx = validationExamples(tok);
  const nll = protocol.nll;
  /** The mean "!" share over the sampling seeds (50 samples each). */
  const bang = async (a: AdapterWeights) => (await protocol.shares(a)).reduce((x, y) => x + y, 0) / SAMPLING_SEEDS.length;

  const V = engine.model.config.vocabSize;
  const { dot: DOT, bang: BANG } = punctuationIds(tok);
  const logSoftmax = (l: Float32Array, off: number) => {
    let m = -Infinity;
    for (let i = 0; i < V; i++) m = Math.max(m, l[off + i]);
    let z = 0;
    for (let i = 0; i < V; i++) z += Math.exp(l[off + i] - m);
    return (i: number) => l[off + i] - m - Math.log(z);
  };
  /** NLL change by the category of the predicted token, per token of the whole set. */
  const decompose = async (a: AdapterWeights, ref: AdapterWeights) => {
    const rows = valEx.map((e) => e.ids);
    const [la, lr] = [
      await engine.logits(
        rows,
        rows.map(() => a),
      ),
      await engine.logits(
        rows,
        rows.map(() => ref),
      ),
    ];
    const cat = { dot: 0, bang: 0, afterDot: 0, other: 0 };
    let n = 0;
    let pDot = [0, 0];
    let pBang = [0, 0];
    let nDot = 0;
    rows.forEach((ids, b) => {
      for (let t = 0; t + 1 < ids.length; t++) {
        const A = logSoftmax(la[b], t * V);
        const R = logSoftmax(lr[b], t * V);
        const y = ids[t + 1];
        const d = R(y) - A(y);
        n++;
        if (y === DOT) {
          cat.dot += d;
          nDot++;
          pDot = [pDot[0] + Math.exp(R(DOT)), pDot[1] + Math.exp(A(DOT))];
          pBang = [pBang[0] + Math.exp(R(BANG)), pBang[1] + Math.exp(A(BANG))];
        } else if (y === BANG) cat.bang += d;
        else if (ids[t] === DOT) cat.afterDot += d;
        else cat.other += d;
      }
    });
    return {
      dotTok: +(nDot / n).toFixed(4),
      dDot: +(cat.dot / n).toFixed(4),
      dBangTok: +(cat.bang / n).toFixed(4),
      dAfterDot: +(cat.afterDot / n).toFixed(4),
      dOther: +(cat.other / n).toFixed(4),
      pDot: pDot.map((x) => +(x / nDot).toFixed(3)),
      pBang: pBang.map((x) => +(x / nDot).toFixed(3)),
    };
  };

  const starts: Record<string, { adapter: AdapterWeights; train: PreferencePair[]; held: PreferencePair[]; nll: number; bang: number }> =
    {};
  for (const [name, start] of [
    ['brief', brief],
    ['base', base],
  ] as const) {
    const recs = await protocol.corrections(start, 1);
    const pairs = toPreferencePairs(recs, tok, { maxLen: 512, endId: 1 }).items;
    const same = pairs.filter((p) => p.chosen.ids.length === p.rejected.ids.length).length;
    const { train: tr, validation } = splitValidation(pairs, 0.25, 0);
    starts[name] = { adapter: start, train: tr, held: validation, nll: await nll(start), bang: await bang(start) };
    if (name === 'brief') console.log(JSON.stringify(await decompose(brief, base)));
    console.log(JSON.stringify({ start: name, pairs: pairs.length, sameLength: same, nll: starts[name].nll, bang: starts[name].bang }));
  }

  const selfBatches = new Map<string, TokenBatch[]>();
  for (const c of configs) {
    const s = starts[c.start ?? 'brief'];
    if (c.self && !selfBatches.has(c.start ?? 'brief')) {
      const more = await sampleStories(engine, PROMPT, s.adapter, {
        count: 256,
        temperature: 1,
        topP: 1,
        seed: 10001,
        maxNewTokens: LENGTH,
      });
      const ex = toExamples(
        more.map((text) => ({ text })),
        'text',
        tok,
        { maxLen: 512, endId: null },
      ).items;
      selfBatches.set(c.start ?? 'brief', makeBatches(ex, { batchSize: 32, seed: 0, shuffle: true, padId: 0 }));
    }
    let selfIndex = 0;
    const beta = c.beta ?? 0.1;
    const alpha = c.alpha ?? 0;
    const anchor = c.anchor ?? 0;
    const tensors = c.tensors ?? 'all';
    const a: AdapterWeights = { ...s.adapter, prefix: s.adapter.prefix.slice(), gates: s.adapter.gates.slice() };
    const params = tensors === 'all' ? [a.prefix, a.gates] : tensors === 'gates' ? [a.gates] : [a.prefix];
    const opt = new AdamW(params, { lr: c.lr, weightDecay: c.wd ?? 0.02 });
    const bs = c.batch ?? 8;
    const perEpoch = Math.ceil(s.train.length / bs);
    const total = perEpoch * c.epochs;
    const sched = makeSchedule({ kind: 'cosine', peakLr: c.lr, warmupSteps: Math.ceil(total * 0.1), totalSteps: total });
    const heldBatches = makePairBatches(s.held, { batchSize: 16, seed: 0, shuffle: false, padId: 0 });
    let step = 0;
    const refCache = new Map<string, Float32Array>();
    for (let e = 0; e < c.epochs; e++) {
      for (const batch of makePairBatches(s.train, { batchSize: bs, seed: (c.seed ?? 0) + e, shuffle: bs < s.train.length, padId: 0 })) {
        const key = Buffer.from(batch.inputIds.buffer, batch.inputIds.byteOffset, batch.inputIds.byteLength).toString('base64');
        const ref = refCache.get(key) ?? (await engine.sequenceLogps(batch, s.adapter));
        refCache.set(key, ref);
        const r = await engine.dpoStep(batch, a, ref, beta);
        const w = c.dpo ?? 1;
        const gp = r.gradPrefix.map((g) => g * w);
        const gg = r.gradGates.map((g) => g * w);
        if (c.self) {
          const sb = selfBatches.get(c.start ?? 'brief')!;
          const an = await engine.sftStep(sb[selfIndex++ % sb.length], a);
          an.gradPrefix.forEach((g, i) => (gp[i] += c.self! * g));
          an.gradGates.forEach((g, i) => (gg[i] += c.self! * g));
        }
        if (c.edit) {
          const ed = await engine.sftStep(editRows(batch), a);
          ed.gradPrefix.forEach((g, i) => (gp[i] += c.edit! * g));
          ed.gradGates.forEach((g, i) => (gg[i] += c.edit! * g));
        }
        if (alpha) {
          const sft = await engine.sftStep(chosenRows(batch), a);
          sft.gradPrefix.forEach((g, i) => (gp[i] += alpha * g));
          sft.gradGates.forEach((g, i) => (gg[i] += alpha * g));
        }
        if (anchor) {
          const an = await engine.sftStep(anchorRows(batch), a);
          an.gradPrefix.forEach((g, i) => (gp[i] += anchor * g));
          an.gradGates.forEach((g, i) => (gg[i] += anchor * g));
        }
        const grads = tensors === 'all' ? [gp, gg] : tensors === 'gates' ? [gg] : [gp];
        clipGradNorm(grads, 1);
        opt.update(grads, sched.lrAt(step));
        step++;
      }
      if ((e + 1) % (c.evalEvery ?? 1) !== 0 && e + 1 !== c.epochs) continue;
      const held = await heldStats(engine, heldBatches, a, s.adapter);
      const [b, n] = [await bang(a), await nll(a)];
      console.log(
        JSON.stringify({
          ...c,
          epoch: e + 1,
          steps: step,
          dBang: +(b - s.bang).toFixed(3),
          dNll: +(n - s.nll).toFixed(4),
          ...held,
          ...(e + 1 === c.epochs || c.diag ? await decompose(a, s.adapter) : {}),
          gateAbs: +(a.gates.reduce((x, y) => x + Math.abs(y), 0) / a.gates.length).toFixed(3),
        }),
      );
    }
  }
  await engine.dispose();
}

/** The rejected rows with the positions whose target differs from the chosen row's masked out (aligned pairs only). */
function anchorRows(batch: TokenBatch): TokenBatch {
  const P = batch.rows / 2;
  const T = batch.length;
  const mask = new Uint8Array(P * T);
  for (let i = 0; i < P; i++) {
    const c = batch.targets.subarray(i * T, (i + 1) * T);
    const r = batch.targets.subarray((P + i) * T, (P + i + 1) * T);
    const rm = batch.mask.subarray((P + i) * T, (P + i + 1) * T);
    const cm = batch.mask.subarray(i * T, (i + 1) * T);
    let aligned = true;
    for (let t = 0; t < T; t++) if (rm[t] !== cm[t]) aligned = false;
    for (let t = 0; t < T; t++) mask[i * T + t] = aligned && rm[t] && c[t] === r[t] ? 1 : 0;
  }
  return {
    rows: P,
    length: T,
    inputIds: batch.inputIds.subarray(P * T),
    targets: batch.targets.subarray(P * T),
    mask,
  };
}

/** The chosen rows scored only where their target differs from the rejected row's (the edits). */
function editRows(batch: TokenBatch): TokenBatch {
  const P = batch.rows / 2;
  const T = batch.length;
  const mask = new Uint8Array(P * T);
  for (let i = 0; i < P; i++)
    for (let t = 0; t < T; t++)
      mask[i * T + t] = batch.mask[i * T + t] && batch.targets[i * T + t] !== batch.targets[(P + i) * T + t] ? 1 : 0;
  return { ...chosenRows(batch), mask };
}

async function heldStats(engine: Engine, batches: TokenBatch[], a: AdapterWeights, ref: AdapterWeights) {
  let acc = 0;
  let margin = 0;
  let n = 0;
  for (const b of batches) {
    const lp = await engine.sequenceLogps(b, a);
    const rp = await engine.sequenceLogps(b, ref);
    const P = b.rows / 2;
    for (let i = 0; i < P; i++) {
      if (lp[i] > lp[P + i]) acc++;
      margin += lp[i] - lp[P + i] - (rp[i] - rp[P + i]);
      n++;
    }
  }
  return { heldAcc: +(acc / n).toFixed(3), heldMargin: +(margin / n).toFixed(2) };
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

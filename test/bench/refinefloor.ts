// What +0.2 of "!" share must cost on unstyled stories at the least (issue 11, item 4): the
// validation NLL that test/cli/refine.test.ts bounds rises even for a model whose only change is
// the one the style asks for. Here the start adapter's next-token distributions (refineprotocol.ts)
// are changed by hand, nothing else moved: "tilt" multiplies p("!") by k at every position and
// renormalises (the least change, in KL, that makes "!" k times as likely); "swap" multiplies the
// odds of "!" against "." by k, their sum kept. For each k: the "!" share of 50 samples per
// sampling seed (the test's prompt, length and sampling) and the validation NLL.
//   npm run build && node out/test/bench/refinefloor.js '[1, 4, 6, 8, 10]' [base]
// With `base`, the change is made to the base model's distributions instead (the other start).

import { Engine } from '../../src/engine/engine';
import { Sampler } from '../../src/generate/sampler';
import { stopTokenIds } from '../../src/model/generation';
import { loadModel } from '../../src/model/load';
import { adherence } from './style';
import { END_ID, LENGTH, PROMPT, punctuationIds, refineProtocol, SAMPLING_SEEDS, VALIDATION } from './refineprotocol';
import { STORIES } from '../model/paths';

/** Changes a next-token distribution in place by factor k. */
type Change = (p: Float64Array, k: number) => void;

function softmax(z: Float32Array): Float64Array {
  const m = z.reduce((a, b) => Math.max(a, b), -Infinity);
  const p = Float64Array.from(z, (x) => Math.exp(x - m));
  const s = p.reduce((a, b) => a + b, 0);
  return p.map((x) => x / s);
}

async function main() {
  const ks = process.argv[2] ? (JSON.parse(process.argv[2]) as number[]) : [1, 4, 6, 8, 10];
  const engine = await Engine.create(await loadModel(STORIES));
  const tok = engine.model.tokenizer;
  const V = engine.model.config.vocabSize;
  const { dot: DOT, bang: BANG } = punctuationIds(tok);
  const start = process.argv[3] === 'base' ? null : (await refineProtocol(engine)).start;
  const changes: Record<string, Change> = {
    tilt: (p, k) => {
      const z = 1 + p[BANG] * (k - 1);
      p[BANG] *= k;
      for (let i = 0; i < p.length; i++) p[i] /= z;
    },
    swap: (p, k) => {
      const sum = p[DOT] + p[BANG];
      const bang = (k * p[BANG]) / (p[DOT] + k * p[BANG]);
      p[BANG] = sum * bang;
      p[DOT] = sum * (1 - bang);
    },
  };

  // Every next-token distribution of the validation stories, with the token that follows.
  const dists: { p: Float64Array; target: number }[] = [];
  for (const text of VALIDATION) {
    const ids = [...tok.encode(text), END_ID];
    const [logits] = await engine.logits([ids.slice(0, -1)], [start]);
    for (let t = 1; t < ids.length; t++) dists.push({ p: softmax(logits.subarray((t - 1) * V, t * V)), target: ids[t] });
  }
  const dots = dists.filter((d) => d.target === DOT);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  console.log(
    JSON.stringify({
      tokens: dists.length,
      dotTargets: dots.length,
      bangTargets: dists.filter((d) => d.target === BANG).length,
      pDotAtDot: +mean(dots.map((d) => d.p[DOT])).toFixed(3),
      pBangAtDot: +mean(dots.map((d) => d.p[BANG])).toFixed(3),
    }),
  );
  /** Token-mean NLL of the validation stories, and the part of it at sentence-final "." targets. */
  const nll = (change: Change, k: number) => {
    let all = 0;
    let atDots = 0;
    for (const d of dists) {
      const p = d.p.slice();
      change(p, k);
      all -= Math.log(p[d.target]);
      if (d.target === DOT) atDots -= Math.log(p[d.target]);
    }
    return { all: all / dists.length, atDots: atDots / dists.length };
  };

  // The test's sampling (sampleAnswers) with the change applied before the sampler's temperature and top-p.
  const ends = stopTokenIds(engine.model.generation, { stopOnBos: true });
  const share = async (change: Change, k: number, seed: number) => {
    const promptIds = tok.encode(PROMPT);
    const samplers = Array.from({ length: 50 }, (_, b) => new Sampler({ temperature: 0.8, topP: 0.9, seed: seed + b }));
    const out: number[][] = samplers.map(() => []);
    let { state, logits } = await engine.prefill(Array(50).fill(promptIds), Array(50).fill(start));
    let live = samplers.map((_, b) => b);
    while (live.length > 0) {
      const next = live.map((b, r) => {
        const p = softmax(logits[r]);
        change(p, k);
        return samplers[b].pick(Float32Array.from(p, Math.log), []);
      });
      const keep: number[] = [];
      live.forEach((b, r) => {
        if (ends.has(next[r])) return;
        out[b].push(next[r]);
        if (out[b].length < LENGTH) keep.push(r);
      });
      if (keep.length === 0) break;
      if (keep.length < live.length) state = engine.keepRows(state, keep);
      logits = await engine.decode(
        state,
        keep.map((r) => next[r]),
      );
      live = keep.map((r) => live[r]);
    }
    return adherence(
      'shout',
      out.map((ids) => tok.decode([...promptIds, ...ids], { skipSpecialTokens: true })),
    ).meanBang!;
  };

  const unchanged = nll(changes.tilt, 1);
  for (const [name, change] of Object.entries(changes)) {
    for (const k of ks) {
      const shares = [];
      for (const seed of SAMPLING_SEEDS) shares.push(+(await share(change, k, seed)).toFixed(3));
      const { all, atDots } = nll(change, k);
      console.log(
        JSON.stringify({
          change: name,
          k,
          shares,
          meanShare: +mean(shares).toFixed(3),
          dNll: +(all - unchanged.all).toFixed(4),
          dNllAtDots: +(atDots - unchanged.atDots).toFixed(4),
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

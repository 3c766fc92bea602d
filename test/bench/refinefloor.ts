// What +0.2 of "!" share costs on unstyled stories when nothing but the style changes (issue 11,
// item 4): the start adapter's next-token distributions (refineprotocol.ts), or the base model's,
// are changed by hand, each position by a function of its own distribution only (so an adapter
// could in principle make the same change), and the bench measures the two numbers that
// test/cli/refine.test.ts measures: the "!" share of 50 samples (the test's prompt, length and
// sampling, per sampling seed) and the validation NLL of the unstyled stories.
//
// Every change multiplies the odds of "!" against "." at a position by a factor m >= 1, taking the
// mass either from "." alone ("swap": their sum kept, per position the change of least expected NLL
// under a calibrated model for those odds) or from every other token in proportion ("tilt": the
// least for that p("!")). The families differ in where and by how much (FAMILIES). The share is not
// linear in the odds: temperature 0.8 raises them to the power 1.25, and top-p 0.9 drops "!" where
// likelier tokens hold 0.9 of the tempered mass, so a change that is not uniform may be cheaper.
// Each family's strength k steps from its weakest change until the test's sampling seed and the mean
// over the seeds have both gained 0.2; the summary interpolates the NLL at +0.2, linearly in the
// share. Measured: README, "Refining from corrections".
//   npm run build && node out/test/bench/refinefloor.js [start|base] [family,family...] [strengths]
// `base` changes the base model's distributions instead (the other start); strengths, a JSON
// list, replace the families' own (to look closer between two).

import { Engine } from '../../src/engine/engine';
import { sampleAnswers } from '../../src/generate/answers';
import { Sampler } from '../../src/generate/sampler';
import { loadModel } from '../../src/model/load';
import { bangShare, STYLE_SAMPLING } from './style';
import { END_ID, LENGTH, PROMPT, punctuationIds, refineProtocol, SAMPLING_SEEDS, VALIDATION } from './refineprotocol';
import { STORIES } from '../model/paths';

type Ids = ReturnType<typeof punctuationIds>;

/** Multiplies the odds of "!" against "." by m, the mass coming from every other token in proportion. */
function tilt(p: Float64Array, m: number, { bang }: Ids): void {
  const z = 1 + p[bang] * (m - 1);
  p[bang] *= m;
  for (let i = 0; i < p.length; i++) p[i] /= z;
}

/** Multiplies the odds of "!" against "." by m, the mass coming from "." alone. */
function swap(p: Float64Array, m: number, { dot, bang }: Ids): void {
  const sum = p[dot] + p[bang];
  const share = (m * p[bang]) / (p[dot] + m * p[bang]);
  p[bang] = sum * share;
  p[dot] = sum * (1 - share);
}

/** The test's sampler, for the tokens it keeps (its seed plays no part in `distribution`). */
const SAMPLER = new Sampler({ ...STYLE_SAMPLING, seed: 0 });
/** Whether the test's sampling can draw token `id` from p (top-p keeps it). */
const inNucleus = (p: Float64Array, id: number) => SAMPLER.distribution(Float32Array.from(p, Math.log))[id] > 0;

/** The share of "!" among "." and "!" in samples where their ratio is rho (temperature only, top-p aside). */
const sampled = (rho: number) => 1 / (1 + ((1 - rho) / rho) ** (1 / STYLE_SAMPLING.temperature));
/** KL(Bernoulli(a) ‖ Bernoulli(b)). */
const klBernoulli = (a: number, b: number) => a * Math.log(a / b) + (1 - a) * Math.log((1 - a) / (1 - b));

/**
 * The odds factor that, for a model calibrated on the stories, buys the most sampled share per
 * expected NLL at a position whose ratio p("!") / (p(".") + p("!")) is rho: the swap to the ratio x
 * that maximises sampled(x) - sampled(rho) - KL(rho ‖ x) / k (the swap's expected NLL is
 * (p(".") + p("!")) × KL(rho ‖ x), and the chance that a sample ends a sentence there is about
 * p(".") + p("!") too, so that weight cancels). Searched over log-odds steps of 0.05.
 */
function calibratedBest(rho: number, k: number): number {
  let best = { gain: 0, factor: 1 };
  for (let step = 0.05; step <= 12; step += 0.05) {
    const x = 1 / (1 + (1 - rho) / rho / Math.exp(step));
    const gain = sampled(x) - sampled(rho) - klBernoulli(rho, x) / k;
    if (gain > best.gain) best = { gain, factor: Math.exp(step) };
  }
  return best.factor;
}

interface Family {
  name: string;
  move: typeof tilt;
  /** The odds factor at a position with distribution p, for strength k (1: unchanged). */
  factor: (p: Float64Array, k: number, ids: Ids) => number;
  /** Strengths, from the weakest change; `none` changes nothing. */
  ks: number[];
  none: number;
}

const MULTIPLIERS = [2, 4, 8, 16, 32, 64, 128];
/** Odds floors for the "lift" families: where "!" has odds below k against ".", it gets k. */
const FLOORS = [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2];

const FAMILIES: Family[] = [
  { name: 'tilt', move: tilt, factor: (_, k) => k, ks: MULTIPLIERS, none: 1 },
  { name: 'swap', move: swap, factor: (_, k) => k, ks: MULTIPLIERS, none: 1 },
  // The sentence ends the model is unsure of, or sure of.
  { name: 'swap where p(.) < 0.5', move: swap, factor: (p, k, { dot }) => (p[dot] < 0.5 ? k : 1), ks: MULTIPLIERS, none: 1 },
  { name: 'swap where p(.) >= 0.5', move: swap, factor: (p, k, { dot }) => (p[dot] >= 0.5 ? k : 1), ks: MULTIPLIERS, none: 1 },
  // Only where top-p would then keep "!": elsewhere the change costs NLL and no sample sees it.
  {
    name: 'swap where "!" then in nucleus',
    move: swap,
    factor: (p, k, ids) => {
      const q = p.slice();
      swap(q, k, ids);
      return inNucleus(q, ids.bang) ? k : 1;
    },
    ks: MULTIPLIERS,
    none: 1,
  },
  // The odds raised to a floor: the positions where "!" is least likely move most (pushed past 1 for k > 1).
  { name: 'lift (swap)', move: swap, factor: (p, k, { dot, bang }) => Math.max(1, (k * p[dot]) / p[bang]), ks: FLOORS, none: 0 },
  // The swap above, for strength k: at T = 0.8 a small rise of a small ratio buys almost no share, so
  // this leaves the positions where "!" is unlikely alone or lifts them far (past odds 1/2).
  {
    name: 'calibrated best (swap)',
    move: swap,
    factor: (p, k, { dot, bang }) => calibratedBest(p[bang] / (p[dot] + p[bang]), k),
    ks: [0.3, 0.5, 0.7, 1, 1.2, 1.4, 1.7, 2, 3, 5],
    none: 0,
  },
  {
    name: 'calibrated best (tilt)',
    move: tilt,
    factor: (p, k, { dot, bang }) => calibratedBest(p[bang] / (p[dot] + p[bang]), k),
    ks: [0.3, 0.5, 0.7, 1, 1.2, 1.4, 1.7, 2, 3, 5],
    none: 0,
  },
  // Odds 0.7 (ratio 0.41, where sampled(x) / -log(1 - x) peaks) at the surest sentence ends first:
  // past 1 at temperature 0.8, at a growing fraction of positions.
  {
    name: 'lift to 0.7 where p(.) >= k',
    move: swap,
    factor: (p, k, { dot, bang }) => (p[dot] >= k ? Math.max(1, (0.7 * p[dot]) / p[bang]) : 1),
    ks: [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05],
    none: 1,
  },
  { name: 'lift (tilt)', move: tilt, factor: (p, k, { dot, bang }) => Math.max(1, (k * p[dot]) / p[bang]), ks: FLOORS, none: 0 },
];

function softmax(z: Float32Array): Float64Array {
  const m = z.reduce((a, b) => Math.max(a, b), -Infinity);
  const p = Float64Array.from(z, (x) => Math.exp(x - m));
  const s = p.reduce((a, b) => a + b, 0);
  return p.map((x) => x / s);
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs: number[]) => Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1));
const round = (x: number, digits = 3) => +x.toFixed(digits);

/** The NLL at which the share first reaches `target` along a family's points (the start first), linear between points. */
function costAt(points: { share: number; dNll: number; k: number }[], target: number) {
  const i = points.findIndex((q) => q.share >= target);
  if (i <= 0) return null;
  const [a, b] = [points[i - 1], points[i]];
  const f = (target - a.share) / (b.share - a.share);
  return { dNll: round(a.dNll + f * (b.dNll - a.dNll), 4), k: round(a.k + f * (b.k - a.k), 2) };
}

async function main() {
  const base = process.argv[2] === 'base';
  const families = process.argv[3] ? process.argv[3].split(',').map((name) => FAMILIES.find((f) => f.name === name)!) : FAMILIES;
  const ks = process.argv[4] ? (JSON.parse(process.argv[4]) as number[]) : null;
  const engine = await Engine.create(await loadModel(STORIES));
  const tok = engine.model.tokenizer;
  const V = engine.model.config.vocabSize;
  const ids = punctuationIds(tok);
  const start = base ? null : (await refineProtocol(engine)).start;
  /** Changes p in place by a family at strength k. */
  const change = (f: Family, k: number, p: Float64Array) => f.move(p, f.factor(p, k, ids), ids);

  // Every next-token distribution of the validation stories, with the token that follows.
  const dists: { p: Float64Array; target: number }[] = [];
  for (const text of VALIDATION) {
    const tokens = [...tok.encode(text), END_ID];
    const [logits] = await engine.logits([tokens.slice(0, -1)], [start]);
    for (let t = 1; t < tokens.length; t++) dists.push({ p: softmax(logits.subarray((t - 1) * V, t * V)), target: tokens[t] });
  }
  const dots = dists.filter((d) => d.target === ids.dot);
  console.log(
    JSON.stringify({
      start: base ? 'base' : 'brief shout adapter',
      tokens: dists.length,
      dotTargets: dots.length,
      bangTargets: dists.filter((d) => d.target === ids.bang).length,
      pDotAtDot: round(mean(dots.map((d) => d.p[ids.dot]))),
      pBangAtDot: round(mean(dots.map((d) => d.p[ids.bang]))),
      bangInNucleusAtDot: round(mean(dots.map((d) => (inNucleus(d.p, ids.bang) ? 1 : 0)))),
    }),
  );

  /**
   * Mean increase over the validation tokens of the NLL, of the part of it at "." targets, and of
   * KL(p ‖ changed p): what the NLL would rise by were the model calibrated on these stories.
   */
  const cost = (f: Family | null, k: number) => {
    if (!f) return { dNll: 0, dNllAtDots: 0, kl: 0 };
    let all = 0;
    let atDots = 0;
    let kl = 0;
    for (const d of dists) {
      const p = d.p.slice();
      change(f, k, p);
      const dNll = Math.log(d.p[d.target] / p[d.target]);
      all += dNll;
      if (d.target === ids.dot) atDots += dNll;
      for (let i = 0; i < V; i++) kl += d.p[i] * Math.log(d.p[i] / p[i]);
    }
    return { dNll: round(all / dists.length, 4), dNllAtDots: round(atDots / dists.length, 4), kl: round(kl / dists.length, 4) };
  };

  // The test's sampling (sampleAnswers) with the change applied before the sampler's temperature and top-p.
  const promptIds = tok.encode(PROMPT);
  /** The "!" share of each of 50 samples from `seed`. */
  const shares = async (f: Family | null, k: number, seed: number) => {
    const logitsProcessor = (z: Float32Array) => {
      const p = softmax(z);
      change(f!, k, p);
      return Float32Array.from(p, Math.log);
    };
    const answers = await sampleAnswers(engine, Array(50).fill(promptIds), start, {
      ...STYLE_SAMPLING,
      seed,
      maxNewTokens: LENGTH,
      ...(f ? { logitsProcessor } : {}),
    });
    return answers.map((tokens) => bangShare(tok.decode([...promptIds, ...tokens], { skipSpecialTokens: true })));
  };
  /** Per sampling seed the mean share; their mean and spread; the test seed's standard error from its 50 samples. */
  const measure = async (f: Family | null, k: number) => {
    const perSample = [];
    for (const seed of SAMPLING_SEEDS) perSample.push(await shares(f, k, seed));
    const perSeed = perSample.map(mean);
    return {
      shares: perSeed.map((x) => round(x)),
      meanShare: round(mean(perSeed)),
      sdAcrossSeeds: round(sd(perSeed)),
      seTestSeed: round(sd(perSample[0]) / Math.sqrt(50)),
      ...cost(f, k),
    };
  };

  const unchanged = await measure(null, 1);
  console.log(JSON.stringify({ family: 'unchanged', ...unchanged }));
  const [target0, targetMean] = [unchanged.shares[0] + 0.2, unchanged.meanShare + 0.2];
  for (const f of families) {
    const points = [{ k: f.none, ...unchanged }];
    for (const k of ks ?? f.ks) {
      const m = await measure(f, k);
      console.log(JSON.stringify({ family: f.name, k, ...m }));
      points.push({ k, ...m });
      if (m.shares[0] >= target0 && m.meanShare >= targetMean) break;
    }
    const at = (seed: number | null, target: number) =>
      costAt(
        points.map((q) => ({ k: q.k, dNll: q.dNll, share: seed === null ? q.meanShare : q.shares[seed] })),
        target,
      );
    console.log(JSON.stringify({ family: f.name, plus02: { testSeed: at(0, target0), mean: at(null, targetMean) } }));
  }
  await engine.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

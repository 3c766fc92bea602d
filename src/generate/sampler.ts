// Picks the next token from logits with Hugging Face's processing order:
// repetition penalty, temperature, top-k, top-p (nucleus), then a draw from a
// seeded generator, so a seed reproduces a generation exactly.

import { Rng } from '../util/random';

export interface SamplerOptions {
  /** 0 means greedy (argmax, first maximum wins). */
  temperature: number;
  /** Keep the k most likely tokens; 0 (default) keeps all. */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p; 1 (default) keeps all. */
  topP?: number;
  /** HF-style: a seen token's logit is divided by it when positive, multiplied when not; 1 (default) is off. */
  repetitionPenalty?: number;
  seed: number;
}

/** Candidate tokens with their probabilities; `sorted` when in descending probability order (ties: lower id first). */
interface Candidates {
  ids: Int32Array;
  probs: Float64Array;
  sorted: boolean;
}

export class Sampler {
  private readonly temperature: number;
  private readonly topK: number;
  private readonly topP: number;
  private readonly penalty: number;
  private readonly rng: Rng;

  constructor(opts: SamplerOptions) {
    this.temperature = opts.temperature;
    this.topK = opts.topK ?? 0;
    this.topP = opts.topP ?? 1;
    this.penalty = opts.repetitionPenalty ?? 1;
    if (!(this.temperature >= 0)) throw new RangeError(`temperature must be >= 0, got ${opts.temperature}`);
    if (!(Number.isInteger(this.topK) && this.topK >= 0)) throw new RangeError(`topK must be an integer >= 0, got ${opts.topK}`);
    if (!(this.topP > 0 && this.topP <= 1)) throw new RangeError(`topP must be in (0, 1], got ${opts.topP}`);
    if (!(this.penalty > 0)) throw new RangeError(`repetitionPenalty must be > 0, got ${opts.repetitionPenalty}`);
    this.rng = new Rng(opts.seed);
  }

  pick(logits: Float32Array, previousIds: number[]): number {
    return draw(this.candidates(logits, previousIds), this.rng.next());
  }

  /** The probability `pick` gives each token id (without drawing, so the seeded sequence is unchanged). */
  distribution(logits: Float32Array, previousIds: number[] = []): Float64Array {
    const c = this.candidates(logits, previousIds);
    const total = c.probs.reduce((a, b) => a + b, 0);
    const p = new Float64Array(logits.length);
    c.ids.forEach((id, i) => (p[id] = c.probs[i] / total));
    return p;
  }

  /** What a draw chooses among: penalty, temperature, top-k, top-p; greedy is the one argmax. */
  private candidates(logits: Float32Array, previousIds: number[]): Candidates {
    if (logits.length === 0) throw new RangeError('Sampler.pick: empty logits');
    const z = Float64Array.from(logits);
    if (this.penalty !== 1) applyRepetitionPenalty(z, previousIds, this.penalty);
    if (this.temperature === 0) return { ids: Int32Array.of(argmax(z)), probs: Float64Array.of(1), sorted: true };
    for (let i = 0; i < z.length; i++) z[i] /= this.temperature;
    const candidates =
      this.topK > 0 && this.topK < z.length ? softmax(z, topKIds(z, this.topK), true) : softmax(z, allIds(z.length), false);
    return this.topP < 1 ? nucleus(candidates, this.topP) : candidates;
  }
}

export function applyRepetitionPenalty(z: Float64Array, previousIds: number[], penalty: number): void {
  for (const id of new Set(previousIds)) {
    if (id < 0 || id >= z.length) continue;
    z[id] = z[id] > 0 ? z[id] / penalty : z[id] * penalty;
  }
}

export function argmax(z: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < z.length; i++) if (z[i] > z[best]) best = i;
  return best;
}

function allIds(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => i);
}

/** The k largest, in descending order; among equal values the lower id ranks first (so top-k 1 is greedy). */
function topKIds(z: Float64Array, k: number): Int32Array {
  const best: number[] = [];
  for (let i = 0; i < z.length; i++) {
    if (best.length === k && !(z[i] > z[best[k - 1]])) continue;
    let at = best.length;
    while (at > 0 && z[best[at - 1]] < z[i]) at--;
    best.splice(at, 0, i);
    if (best.length > k) best.pop();
  }
  return Int32Array.from(best);
}

/** Float64 softmax over the given ids, with the maximum subtracted for stability. */
function softmax(z: Float64Array, ids: Int32Array, sorted: boolean): Candidates {
  let max = -Infinity;
  for (const id of ids) max = Math.max(max, z[id]);
  const probs = new Float64Array(ids.length);
  let sum = 0;
  ids.forEach((id, i) => {
    probs[i] = Math.exp(z[id] - max);
    sum += probs[i];
  });
  for (let i = 0; i < probs.length; i++) probs[i] /= sum;
  return { ids, probs, sorted };
}

/** Keeps the most likely candidates up to cumulative probability p (at least one). */
function nucleus(candidates: Candidates, p: number): Candidates {
  const c = candidates.sorted ? candidates : sortLikely(candidates, p);
  let cumulative = 0;
  let keep = 0;
  while (keep < c.ids.length && cumulative < p) cumulative += c.probs[keep++];
  return { ids: c.ids.subarray(0, Math.max(1, keep)), probs: c.probs.subarray(0, Math.max(1, keep)), sorted: true };
}

/**
 * Sorts only the candidates that can be in the nucleus: if the tokens with
 * probability >= t already sum to p, the nucleus lies among them. Lowering t
 * until that holds avoids sorting a whole large vocabulary for every token.
 */
function sortLikely(c: Candidates, p: number): Candidates {
  for (let threshold = 1e-3; ; threshold *= 1e-3) {
    const last = threshold < 1e-30;
    const picked: number[] = [];
    let mass = 0;
    c.probs.forEach((prob, i) => {
      if (last || prob >= threshold) {
        picked.push(i);
        mass += prob;
      }
    });
    if (mass >= p || last) {
      picked.sort((a, b) => c.probs[b] - c.probs[a] || c.ids[a] - c.ids[b]);
      return {
        ids: Int32Array.from(picked, (i) => c.ids[i]),
        probs: Float64Array.from(picked, (i) => c.probs[i]),
        sorted: true,
      };
    }
  }
}

/** Inverse-CDF draw with u in [0, 1), renormalising over what is left. */
function draw(c: Candidates, u: number): number {
  let total = 0;
  for (const prob of c.probs) total += prob;
  const target = u * total;
  let cumulative = 0;
  for (let i = 0; i < c.ids.length; i++) {
    cumulative += c.probs[i];
    if (target < cumulative) return c.ids[i];
  }
  // Rounding left the target at the very end: the last candidate with mass.
  let i = c.ids.length - 1;
  while (i > 0 && c.probs[i] === 0) i--;
  return c.ids[i];
}

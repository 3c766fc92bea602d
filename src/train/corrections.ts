// What a refinement adds to DPO (trainer.ts, preferenceStep), as weighted token NLLs that one
// engine.nllStep per batch trains: raise the tokens the user's correction changed, and keep the
// reference's next-token distribution at every other answer token.
//
// Why not DPO alone: DPO's gradient moves every token of a pair by the same weight, so the logit
// it raises for a corrected token rises wherever the model writes that token, also where it was
// already likely; and the tokens that chosen and rejected share cancel in its log-ratio, so
// nothing holds them but a sampled NLL. On 64 shout corrections of stories260K's answers
// (test/cli/refine.test.ts), DPO with RPO and that NLL paid +0.031 nats on unstyled stories for
// +0.30 of "!" share, 0.013 of it away from their "." (test/bench/refinesweep.ts); these terms
// pay +0.015 for as much.

import { diffArrays } from 'diff';
import { chosenRows, type TokenBatch } from '../data/batches';
import type { Engine } from '../engine/engine';
import type { Targets } from '../engine/feeds';
import type { StepResult } from '../engine/types';
import { TRAIN_DEFAULTS } from './defaults';
import type { AdapterWeights } from '../adapter/types';

export interface CorrectionTerms {
  /**
   * × the mean over the edited tokens of (1 − p)·(−log p) (p, their probability, taken as a
   * constant): the push on a corrected token fades as it becomes likely.
   */
  edit: number;
  /**
   * × the mean over the unedited answer tokens of the chosen rows and the anchor's rows of the
   * KL divergence from the reference's `top` likeliest next tokens (the rest of its mass left free).
   */
  keep: number;
  top: number;
}

/** The correction terms that training options ask for (absent weights are 0); a negative weight is refused. */
export function correctionTerms(opts: { editWeight?: number; anchorWeight?: number }): CorrectionTerms {
  const terms = { edit: opts.editWeight ?? 0, keep: opts.anchorWeight ?? 0, top: TRAIN_DEFAULTS.refine.anchorTop };
  if (!(terms.keep >= 0)) throw new RangeError(`anchor weight must be ≥ 0, got ${terms.keep}`);
  if (!(terms.edit >= 0)) throw new RangeError(`edit weight must be ≥ 0, got ${terms.edit}`);
  return terms;
}

/**
 * The reference's top tokens at the positions each row was asked for, by the row's ids and those
 * positions: the reference does not change during a refinement and every epoch passes over the
 * same rows, so each row's reference pass runs once. [positions × top] ids and probabilities.
 */
export type ReferenceTops = Map<string, { ids: Int32Array; q: Float32Array }>;

/**
 * The correction terms' NLL steps, one per batch that they act on (none when no term has a token),
 * and the constant that makes their summed loss read as a KL (0 at the start).
 */
export async function correctionStep(
  engine: Engine,
  batch: TokenBatch,
  anchor: TokenBatch | undefined,
  adapter: AdapterWeights,
  reference: AdapterWeights | null,
  terms: CorrectionTerms,
  tops: ReferenceTops,
): Promise<{ steps: StepResult[]; constant: number }> {
  const chosen = chosenRows(batch);
  const all = editedPositions(batch);
  const edits = terms.edit > 0 ? all : [];
  const edited = new Set(all);
  const kept = terms.keep > 0 ? maskPositions(chosen).filter((p) => !edited.has(p)) : [];
  const anchored = terms.keep > 0 && anchor ? maskPositions(anchor) : [];
  const scale = terms.keep / (kept.length + anchored.length);

  const onChosen: Required<Targets> = { positions: [], ids: [], weights: [] };
  if (edits.length) {
    const ids = edits.map((p) => chosen.targets[p]);
    const logps = await engine.targetLogps(chosen, { positions: edits, ids }, adapter);
    edits.forEach((p, k) => push(onChosen, p, ids[k], (terms.edit * (1 - Math.exp(logps[k]))) / edits.length));
  }
  const onAnchor: Required<Targets> = { positions: [], ids: [], weights: [] };
  let constant = 0;
  if (kept.length) constant += await referenceTop(engine, chosen, kept, reference, terms.top, scale, tops, onChosen);
  if (anchored.length) constant += await referenceTop(engine, anchor!, anchored, reference, terms.top, scale, tops, onAnchor);

  const steps = [];
  if (onChosen.ids.length) steps.push(await engine.nllStep(chosen, onChosen, adapter));
  if (onAnchor.ids.length) steps.push(await engine.nllStep(anchor!, onAnchor, adapter));
  return { steps, constant };
}

/**
 * The flat positions (r·T + t) of a DPO batch's chosen targets that its correction changed: the
 * chosen answer's tokens outside the longest common subsequence with the rejected answer. Rows
 * 0..P−1 are chosen, P..2P−1 rejected (makePairBatches), so the positions index the chosen rows too.
 */
export function editedPositions(batch: TokenBatch): number[] {
  const pairs = batch.rows / 2;
  const edited: number[] = [];
  for (let r = 0; r < pairs; r++) {
    const chosen = maskPositions(batch, r);
    const rejected = maskPositions(batch, pairs + r).map((p) => batch.targets[p]);
    let at = 0;
    for (const part of diffArrays(
      rejected,
      chosen.map((p) => batch.targets[p]),
    )) {
      if (part.removed) continue;
      if (part.added) edited.push(...chosen.slice(at, at + part.count));
      at += part.count;
    }
  }
  return edited;
}

/** The flat positions of the targets of row `row`, or of every row. */
function maskPositions(batch: TokenBatch, row?: number): number[] {
  const [from, to] = row === undefined ? [0, batch.rows * batch.length] : [row * batch.length, (row + 1) * batch.length];
  const out: number[] = [];
  for (let p = from; p < to; p++) if (batch.mask[p]) out.push(p);
  return out;
}

function push(t: Required<Targets>, position: number, id: number, weight: number): void {
  t.positions.push(position);
  t.ids.push(id);
  t.weights.push(weight);
}

/**
 * Adds, at each of `positions`, the reference's `top` likeliest next tokens as targets weighted
 * `scale` × their probability q; returns Σ scale·q·log q (their weighted entropy, negated). A row
 * not in `tops` runs through the reference alone: a row's logits are [T × vocabulary].
 */
async function referenceTop(
  engine: Engine,
  batch: TokenBatch,
  positions: number[],
  reference: AdapterWeights | null,
  top: number,
  scale: number,
  tops: ReferenceTops,
  into: Required<Targets>,
): Promise<number> {
  const T = batch.length;
  const V = engine.model.config.vocabSize;
  let negEntropy = 0;
  for (let r = 0; r < batch.rows; r++) {
    const here = positions.filter((p) => Math.floor(p / T) === r).map((p) => p - r * T);
    if (!here.length) continue;
    const ids = Array.from(batch.inputIds.subarray(r * T, r * T + here[here.length - 1] + 1));
    const key = `${ids}|${here}`;
    let row = tops.get(key);
    if (!row) {
      const [logits] = await engine.logits([ids], [reference]);
      row = { ids: new Int32Array(here.length * top), q: new Float32Array(here.length * top) };
      for (const [j, t] of here.entries()) {
        for (const [k, [id, q]] of topProbabilities(logits.subarray(t * V, (t + 1) * V), top).entries()) {
          row.ids[j * top + k] = id;
          row.q[j * top + k] = q;
        }
      }
      tops.set(key, row);
    }
    for (const [j, t] of here.entries()) {
      for (let k = j * top; k < (j + 1) * top; k++) {
        push(into, r * T + t, row.ids[k], scale * row.q[k]);
        negEntropy += scale * row.q[k] * Math.log(row.q[k]);
      }
    }
  }
  return negEntropy;
}

/** The k likeliest tokens of a softmax over `z`, with their probabilities. */
function topProbabilities(z: Float32Array, k: number): [number, number][] {
  let max = -Infinity;
  for (const v of z) max = Math.max(max, v);
  let total = 0;
  for (const v of z) total += Math.exp(v - max);
  const top: number[] = []; // indices, likeliest first
  for (let i = 0; i < z.length; i++) {
    if (top.length === k && z[i] <= z[top[k - 1]]) continue;
    const at = top.findIndex((j) => z[i] > z[j]);
    top.splice(at < 0 ? top.length : at, 0, i);
    if (top.length > k) top.pop();
  }
  return top.map((i) => [i, Math.exp(z[i] - max) / total]);
}

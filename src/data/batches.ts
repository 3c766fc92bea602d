// Groups examples into right-padded TokenBatches for the engine. Similar
// lengths are batched together so little compute is spent on padding, while
// the order of batches stays random (and reproducible from the seed).

import { Rng } from '../util/random';
import type { Example, PreferencePair } from './examples';

/**
 * A right-padded batch of B rows of T tokens. `targets[b*T + t]` is the token that
 * position t must predict (the next token), and `mask[b*T + t]` is 1 where that
 * prediction is scored, 0 for prompt, padding and the last position.
 */
export interface TokenBatch {
  rows: number;
  length: number;
  inputIds: Int32Array;
  targets: Int32Array;
  mask: Uint8Array;
}

export interface BatchOptions {
  /** Rows per batch (pairs per batch for makePairBatches). */
  batchSize: number;
  seed: number;
  /** false: batches in file order, no bucketing. */
  shuffle: boolean;
  padId: number;
}

/** Length bucketing sorts within windows of this many batches: random enough, yet tight padding. */
const BUCKET_WINDOW_BATCHES = 50;

export function makeBatches(examples: Example[], opts: BatchOptions): TokenBatch[] {
  const groups = batchOrder(
    examples.map((e) => e.ids.length),
    opts,
  );
  return groups.map((group) =>
    packRows(
      group.map((i) => examples[i]),
      opts.padId,
    ),
  );
}

/** Each batch holds P pairs: chosen answers in rows 0..P-1, the rejected ones in rows P..2P-1. */
export function makePairBatches(pairs: PreferencePair[], opts: BatchOptions): TokenBatch[] {
  const lengths = pairs.map((p) => Math.max(p.chosen.ids.length, p.rejected.ids.length));
  return batchOrder(lengths, opts).map((group) => {
    const rows = [...group.map((i) => pairs[i].chosen), ...group.map((i) => pairs[i].rejected)];
    return packRows(rows, opts.padId);
  });
}

/** The chosen half (rows 0..P-1) of a makePairBatches batch, sharing its memory. */
export function chosenRows(batch: TokenBatch): TokenBatch {
  const n = (batch.rows / 2) * batch.length;
  return {
    rows: batch.rows / 2,
    length: batch.length,
    inputIds: batch.inputIds.subarray(0, n),
    targets: batch.targets.subarray(0, n),
    mask: batch.mask.subarray(0, n),
  };
}

/** Deterministic random split; both parts keep the original order. */
export function splitValidation<T>(items: T[], fraction: number, seed: number): { train: T[]; validation: T[] } {
  if (!(fraction >= 0 && fraction < 1)) throw new RangeError(`validation fraction must be in [0, 1), got ${fraction}`);
  const wanted = Math.round(items.length * fraction);
  // A positive fraction always yields at least one validation item, but never all of them.
  const count = Math.min(items.length - 1, fraction > 0 ? Math.max(1, wanted) : 0);
  const picked = new Set(new Rng(seed).shuffle(items.map((_, i) => i)).slice(0, Math.max(0, count)));
  return {
    train: items.filter((_, i) => !picked.has(i)),
    validation: items.filter((_, i) => picked.has(i)),
  };
}

/** Index groups, one per batch. */
function batchOrder(lengths: number[], opts: BatchOptions): number[][] {
  if (!(Number.isInteger(opts.batchSize) && opts.batchSize >= 1)) {
    throw new RangeError(`batchSize must be a positive integer, got ${opts.batchSize}`);
  }
  const order = lengths.map((_, i) => i);
  if (!opts.shuffle) return chunk(order, opts.batchSize);
  const rng = new Rng(opts.seed);
  rng.shuffle(order);
  const batches = chunk(order, opts.batchSize * BUCKET_WINDOW_BATCHES).flatMap((window) =>
    chunk(
      window.sort((a, b) => lengths[a] - lengths[b] || a - b),
      opts.batchSize,
    ),
  );
  return rng.shuffle(batches);
}

function chunk<T>(items: T[], size: number): T[][] {
  const result: T[][] = [];
  for (let i = 0; i < items.length; i += size) result.push(items.slice(i, i + size));
  return result;
}

/**
 * Right-pads rows to the longest. Position t predicts token t+1, so
 * targets[t] = ids[t+1] and mask[t] = isTarget[t+1]; the last real position and
 * the padding are never scored.
 */
function packRows(rows: Example[], padId: number): TokenBatch {
  const length = Math.max(...rows.map((r) => r.ids.length));
  const size = rows.length * length;
  const batch: TokenBatch = {
    rows: rows.length,
    length,
    inputIds: new Int32Array(size).fill(padId),
    targets: new Int32Array(size).fill(padId),
    mask: new Uint8Array(size),
  };
  rows.forEach((row, b) => {
    const base = b * length;
    batch.inputIds.set(row.ids, base);
    for (let t = 0; t + 1 < row.ids.length; t++) {
      batch.targets[base + t] = row.ids[t + 1];
      batch.mask[base + t] = row.isTarget[t + 1];
    }
  });
  return batch;
}

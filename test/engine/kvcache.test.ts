// The in-place key/value cache (src/engine/kvcache.ts): decoding step by step,
// across the points where the cache grows by a chunk, and through joining and
// leaving a batch, gives the logits of one pass over each row's whole sequence.

import * as assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { newAdapter } from '../../src/adapter/new';
import { DecodeState, Engine } from '../../src/engine/engine';
import { CACHE_CHUNK } from '../../src/engine/kvcache';
import type { AdapterWeights } from '../../src/adapter/types';
import { argmax } from '../../src/generate/sampler';
import { loadModel } from '../../src/model/load';
import { STORIES } from '../model/paths';

let engine: Engine;
let adapter: AdapterWeights;

before(async () => {
  engine = await Engine.create(await loadModel(STORIES));
  adapter = newAdapter(engine.model.config, 2, 2, 7);
  adapter.gates.fill(0.7);
});
after(() => engine.dispose());

/** Token ids of a story long enough to pass a chunk boundary. */
function ids(n: number, seed: number): number[] {
  const text = 'Once upon a time there was a little girl named Lily. She loved to play in the park with her dog. ';
  const all = engine.model.tokenizer.encode(text.repeat(20));
  return all.slice(seed, seed + n);
}

/** Largest difference between each row's step logits and a cache-free pass over its whole sequence. */
async function checkRows(seqs: number[][], rowAdapters: (AdapterWeights | null)[], logits: Float32Array[]): Promise<number> {
  const full = await engine.logits(seqs, rowAdapters, { lastOnly: true });
  let worst = 0;
  logits.forEach((l, r) => l.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - full[r][i])))));
  return worst;
}

async function step(state: DecodeState, seqs: number[][], logits: Float32Array[]): Promise<Float32Array[]> {
  const next = logits.map(argmax);
  next.forEach((t, r) => seqs[r].push(t));
  return engine.decode(state, next);
}

test('decoding across cache growth equals one pass over the whole sequence', async () => {
  // Rows of different lengths (the shorter one padded) crossing the first chunk boundary.
  const seqs = [ids(CACHE_CHUNK - 6, 0), ids(CACHE_CHUNK - 40, 3)];
  const rowAdapters = [adapter, null];
  let { state, logits } = await engine.prefill(
    seqs.map((s) => s.slice()),
    rowAdapters,
  );
  for (let i = 0; i < 12; i++) {
    logits = await step(state, seqs, logits);
    const diff = await checkRows(seqs, rowAdapters, logits);
    assert.ok(diff < 1e-4, `step ${i} (row 0 at ${seqs[0].length} tokens): logits differ by ${diff}`);
  }
});

test('joining caches of different sizes and keeping some rows keeps every row exact', async () => {
  const long = ids(CACHE_CHUNK + 20, 1);
  const short = ids(5, 9);
  const a = await engine.prefill([long.slice()], [null]);
  const b = await engine.prefill([short.slice()], [adapter]);
  const seqs = [long, short];
  const rowAdapters = [null, adapter];
  const state = engine.joinStates(a.state, b.state);
  let logits = [...a.logits, ...b.logits];
  for (let i = 0; i < 3; i++) logits = await step(state, seqs, logits);
  assert.ok((await checkRows(seqs, rowAdapters, logits)) < 1e-4, 'joined rows');
  // The long row leaves; the short one keeps decoding from its own slots only.
  const kept = engine.keepRows(state, [1]);
  let keptLogits = [logits[1]];
  const keptSeqs = [seqs[1]];
  for (let i = 0; i < 3; i++) keptLogits = await step(kept, keptSeqs, keptLogits);
  assert.ok((await checkRows(keptSeqs, [adapter], keptLogits)) < 1e-4, 'kept row');
});

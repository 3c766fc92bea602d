import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { makeBatches, makePairBatches, splitValidation } from '../../src/data/batches';
import type { Example } from '../../src/data/examples';

function example(ids: number[], targetFrom: number): Example {
  return { ids, isTarget: Uint8Array.from(ids, (_, i) => (i >= targetFrom ? 1 : 0)) };
}

test('targets are the next token; mask marks positions whose next token is a target', () => {
  const [batch] = makeBatches([example([1, 5, 6, 7], 2), example([1, 8], 1)], { batchSize: 2, seed: 0, shuffle: false, padId: 0 });
  assert.equal(batch.rows, 2);
  assert.equal(batch.length, 4);
  assert.deepEqual([...batch.inputIds], [1, 5, 6, 7, 1, 8, 0, 0]);
  assert.deepEqual([...batch.targets], [5, 6, 7, 0, 8, 0, 0, 0]);
  assert.deepEqual([...batch.mask], [0, 1, 1, 0, 1, 0, 0, 0]);
});

test('no shuffle keeps file order', () => {
  const examples = [5, 2, 9, 3, 7].map((n, i) => example(Array(n).fill(i + 1), 1));
  const batches = makeBatches(examples, { batchSize: 2, seed: 1, shuffle: false, padId: 0 });
  assert.deepEqual(
    batches.map((b) => [...new Set(b.inputIds)].filter((x) => x !== 0)),
    [[1, 2], [3, 4], [5]],
  );
});

function lengthsOf(seed: number, examples: Example[]): number[][] {
  return makeBatches(examples, { batchSize: 4, seed, shuffle: true, padId: 0 }).map((b) => {
    const rows: number[] = [];
    for (let r = 0; r < b.rows; r++) rows.push(b.inputIds.subarray(r * b.length, (r + 1) * b.length).filter((x) => x !== 0).length);
    return rows;
  });
}

test('bucketing is deterministic for a seed and groups similar lengths', () => {
  const examples = Array.from({ length: 100 }, (_, i) => example(Array(1 + ((i * 37) % 60)).fill(3), 0));
  const a = lengthsOf(7, examples);
  assert.deepEqual(lengthsOf(7, examples), a);
  assert.notDeepEqual(lengthsOf(8, examples), a);
  assert.equal(a.flat().length, 100);
  // All 100 fit in one window, so each batch is a run of the sorted lengths.
  for (const rows of a) assert.ok(Math.max(...rows) - Math.min(...rows) <= 4, `spread too wide: ${rows}`);
  // Batch order is shuffled, not sorted.
  const firsts = a.map((rows) => rows[0]);
  assert.notDeepEqual(
    firsts,
    [...firsts].sort((x, y) => x - y),
  );
});

test('pair batches: chosen rows then rejected rows, padded to one length', () => {
  const pairs = [
    { chosen: example([1, 2, 3], 1), rejected: example([1, 4], 1) },
    { chosen: example([1, 5], 1), rejected: example([1, 6, 7, 8], 1) },
  ];
  const [batch] = makePairBatches(pairs, { batchSize: 2, seed: 0, shuffle: false, padId: 0 });
  assert.equal(batch.rows, 4);
  assert.equal(batch.length, 4);
  assert.deepEqual([...batch.inputIds], [1, 2, 3, 0, 1, 5, 0, 0, 1, 4, 0, 0, 1, 6, 7, 8]);
  assert.deepEqual([...batch.mask], [1, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 0]);
});

test('splitValidation is deterministic and disjoint', () => {
  const items = Array.from({ length: 20 }, (_, i) => i);
  const a = splitValidation(items, 0.25, 3);
  assert.deepEqual(splitValidation(items, 0.25, 3), a);
  assert.equal(a.validation.length, 5);
  assert.deepEqual(
    [...a.train, ...a.validation].sort((x, y) => x - y),
    items,
  );
  assert.deepEqual(
    a.train,
    [...a.train].sort((x, y) => x - y),
  );
  assert.equal(splitValidation(items, 0, 3).validation.length, 0);
  assert.equal(splitValidation([1, 2], 0.01, 3).validation.length, 1);
  assert.throws(() => splitValidation(items, 1, 3), /validation fraction/);
});

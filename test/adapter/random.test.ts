import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Rng } from '../../src/util/random';

// The seeded generator behind adapter initialisation; sampling and shuffling rely on it too.
test('the same seed gives the same stream; values stay in range', () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const xs = Array.from({ length: 1000 }, () => a.next());
  assert.deepEqual(
    xs,
    Array.from({ length: 1000 }, () => b.next()),
  );
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  assert.notDeepEqual(xs.slice(0, 10), Array.from({ length: 10 }, new Rng(43).next.bind(new Rng(43))));
  const ints = Array.from({ length: 1000 }, () => a.int(7));
  assert.deepEqual([...new Set(ints)].sort(), [0, 1, 2, 3, 4, 5, 6]);
});

test('shuffle is a seeded permutation', () => {
  const items = Array.from({ length: 20 }, (_, i) => i);
  const once = new Rng(1).shuffle([...items]);
  assert.deepEqual(new Rng(1).shuffle([...items]), once);
  assert.deepEqual(
    [...once].sort((x, y) => x - y),
    items,
  );
  assert.notDeepEqual(once, items);
});

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { makeSchedule } from '../../src/train/schedule';

test('linear warm-up then cosine decay to zero', () => {
  const s = makeSchedule({ kind: 'cosine', peakLr: 1, warmupSteps: 4, totalSteps: 14 });
  assert.deepEqual(
    [0, 1, 2, 3].map((t) => s.lrAt(t)),
    [0.25, 0.5, 0.75, 1],
  );
  assert.equal(s.lrAt(4), 1);
  assert.ok(Math.abs(s.lrAt(9) - 0.5) < 1e-12);
  assert.ok(Math.abs(s.lrAt(14)) < 1e-12);
  assert.ok(Math.abs(s.lrAt(100)) < 1e-12);
  for (let t = 4; t < 14; t++) assert.ok(s.lrAt(t + 1) < s.lrAt(t));
});

test('cosine decays to a minimum ratio', () => {
  const s = makeSchedule({ kind: 'cosine', peakLr: 2, warmupSteps: 0, totalSteps: 10, minRatio: 0.1 });
  assert.equal(s.lrAt(0), 2);
  assert.ok(Math.abs(s.lrAt(10) - 0.2) < 1e-12);
});

test('constant schedule with optional warm-up', () => {
  const s = makeSchedule({ kind: 'constant', peakLr: 0.01, warmupSteps: 2, totalSteps: 0 });
  assert.deepEqual(
    [0, 1, 2, 50].map((t) => s.lrAt(t)),
    [0.005, 0.01, 0.01, 0.01],
  );
  assert.throws(() => makeSchedule({ kind: 'cosine', peakLr: 1, warmupSteps: 0, totalSteps: 5, minRatio: 2 }), /minRatio 2/);
});

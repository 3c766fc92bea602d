import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { allFinite, clipGradNorm } from '../../src/train/clip';

test('clips the global norm over several arrays and returns the norm before', () => {
  const a = Float32Array.from([3, 0]);
  const b = Float32Array.from([4]);
  assert.equal(clipGradNorm([a, b], 1), 5);
  const after = Math.hypot(a[0], a[1], b[0]);
  assert.ok(Math.abs(after - 1) < 1e-6);
  assert.ok(Math.abs(a[0] / b[0] - 0.75) < 1e-6);
});

test('leaves small gradients alone and 0 turns clipping off', () => {
  const a = Float32Array.from([0.3, 0.4]);
  assert.ok(Math.abs(clipGradNorm([a], 1) - 0.5) < 1e-7);
  assert.deepEqual(a, Float32Array.from([0.3, 0.4]));
  const big = Float32Array.from([30, 40]);
  assert.equal(clipGradNorm([big], 0), 50);
  assert.deepEqual(big, Float32Array.from([30, 40]));
});

test('non-finite gradients are reported, not spread', () => {
  const a = Float32Array.from([NaN, 1]);
  assert.ok(Number.isNaN(clipGradNorm([a], 1)));
  assert.equal(a[1], 1);
  assert.equal(allFinite([a]), false);
  assert.equal(allFinite([Float32Array.from([1, Infinity])]), false);
  assert.equal(allFinite([Float32Array.from([1, 2]), new Float32Array(0)]), true);
});

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Sampler } from '../../src/generate/sampler';

function logitsFromProbs(probs: number[]): Float32Array {
  return Float32Array.from(probs, (p) => Math.log(p));
}

function counts(sampler: Sampler, logits: Float32Array, n: number, prev: number[] = []): number[] {
  const c = new Array(logits.length).fill(0);
  for (let i = 0; i < n; i++) c[sampler.pick(logits, prev)]++;
  return c;
}

test('greedy at temperature 0: argmax, first maximum wins', () => {
  const s = new Sampler({ temperature: 0, seed: 1 });
  assert.equal(s.pick(Float32Array.from([0.1, 3, -1, 3]), []), 1);
  assert.equal(s.pick(Float32Array.from([-5, -2, -9]), []), 1);
});

test('seeded sampling is reproducible and seed-dependent', () => {
  const logits = Float32Array.from({ length: 50 }, (_, i) => Math.sin(i));
  const run = (seed: number) => {
    const s = new Sampler({ temperature: 1, topP: 0.95, seed });
    return Array.from({ length: 40 }, () => s.pick(logits, []));
  };
  assert.deepEqual(run(3), run(3));
  assert.notDeepEqual(run(3), run(4));
});

test('sampling frequencies follow the softmax', () => {
  const probs = [0.5, 0.3, 0.15, 0.05];
  const n = 20000;
  const c = counts(new Sampler({ temperature: 1, seed: 11 }), logitsFromProbs(probs), n);
  probs.forEach((p, i) => {
    const sd = Math.sqrt((p * (1 - p)) / n);
    assert.ok(Math.abs(c[i] / n - p) < 5 * sd, `token ${i}: ${c[i] / n} vs ${p}`);
  });
});

test('temperature sharpens the distribution', () => {
  const logits = logitsFromProbs([0.6, 0.4]);
  const n = 10000;
  const c = counts(new Sampler({ temperature: 0.5, seed: 5 }), logits, n);
  // p ∝ prob^2: 0.36 / 0.52 ≈ 0.692
  assert.ok(Math.abs(c[0] / n - 0.36 / 0.52) < 0.02, `${c[0] / n}`);
});

test('top-k 1 equals greedy, including ties', () => {
  const logits = Float32Array.from([1, 4, 2, 4, 0]);
  const s = new Sampler({ temperature: 1.3, topK: 1, seed: 9 });
  for (let i = 0; i < 50; i++) assert.equal(s.pick(logits, []), 1);
});

test('top-k keeps only the k most likely', () => {
  const c = counts(new Sampler({ temperature: 1, topK: 2, seed: 2 }), logitsFromProbs([0.1, 0.4, 0.2, 0.3]), 5000);
  assert.equal(c[0] + c[2], 0);
  assert.ok(Math.abs(c[1] / 5000 - 4 / 7) < 0.03);
});

test('top-p excludes the tail and keeps the smallest set reaching p', () => {
  const probs = [0.05, 0.5, 0.02, 0.3, 0.13];
  // Sorted: 0.5, 0.3 (0.8), 0.13 (0.93): p = 0.9 keeps ids 1, 3, 4.
  const c = counts(new Sampler({ temperature: 1, topP: 0.9, seed: 4 }), logitsFromProbs(probs), 8000);
  assert.equal(c[0] + c[2], 0);
  assert.ok(c[4] > 0);
  assert.ok(Math.abs(c[1] / 8000 - 0.5 / 0.93) < 0.03);
  // A tiny p keeps at least the most likely token.
  const greedy = counts(new Sampler({ temperature: 1, topP: 0.01, seed: 4 }), logitsFromProbs(probs), 200);
  assert.equal(greedy[1], 200);
});

test('top-p on a large vocabulary agrees with a full sort', () => {
  const v = 30000;
  const logits = Float32Array.from({ length: v }, (_, i) => 8 * Math.sin(i * 0.37) + (i % 7));
  const s = new Sampler({ temperature: 1, topP: 0.5, seed: 8 });
  const seen = new Set(Array.from({ length: 3000 }, () => s.pick(logits, [])));
  const max = Math.max(...logits);
  const p = Array.from(logits, (x) => Math.exp(x - max));
  const sum = p.reduce((a, b) => a + b);
  const order = p.map((x, i) => i).sort((a, b) => p[b] - p[a] || a - b);
  const allowed = new Set<number>();
  let cumulative = 0;
  for (const i of order) {
    if (cumulative >= 0.5) break;
    allowed.add(i);
    cumulative += p[i] / sum;
  }
  for (const id of seen) assert.ok(allowed.has(id), `sampled ${id} outside the nucleus`);
});

test('repetition penalty as Hugging Face: divide positive, multiply negative, once per distinct id', () => {
  // Positive logit 2 of a seen token becomes 1 (< 1.5); negative -1 becomes -2 (< -1.5).
  const s = new Sampler({ temperature: 0, repetitionPenalty: 2, seed: 0 });
  assert.equal(s.pick(Float32Array.from([2, 1.5]), [0, 0, 0]), 1);
  assert.equal(s.pick(Float32Array.from([-1, -1.5]), [0]), 1);
  assert.equal(s.pick(Float32Array.from([-1, -1.5]), [1]), 0);
});

test('invalid options are refused', () => {
  assert.throws(() => new Sampler({ temperature: -1, seed: 0 }), /temperature/);
  assert.throws(() => new Sampler({ temperature: 1, topP: 0, seed: 0 }), /topP/);
  assert.throws(() => new Sampler({ temperature: 1, topK: 1.5, seed: 0 }), /topK/);
});

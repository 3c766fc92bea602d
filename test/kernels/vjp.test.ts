// Every op's vector-Jacobian product against central finite differences, on
// random small shapes, in float64 so the check is tight.

import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { grad } from '../../kernels/autodiff';
import { Graph, Value } from '../../kernels/graph';
import * as op from '../../kernels/ops';
import { Rng } from '../../src/util/random';

interface Operand {
  shape: number[];
  /** false: a constant input (weights, tables), not differentiated. */
  grad?: boolean;
  /** Custom values (e.g. int64 indices). */
  ints?: number[];
}

/**
 * Builds loss = Σ f(inputs) · r for a random r, differentiates it, and compares
 * each differentiable input's gradient with (L(x + h) − L(x − h)) / 2h.
 */
async function checkVjp(name: string, operands: Operand[], f: (...xs: Value[]) => Value, seed = 1): Promise<void> {
  const rng = new Rng(seed);
  const g = new Graph('double');
  const xs = operands.map((o, i) => g.input(`x${i}`, o.ints ? 'int64' : 'double', o.shape, o.grad !== false && !o.ints));
  const y = f(...xs);
  const r = g.input('r', 'double', [...y.shape]);
  const loss = op.sum(op.mul(y, r));
  const diff = xs.filter((x) => x.requiresGrad);
  const grads = grad(loss, diff);
  g.output(loss, 'loss');
  grads.forEach((gx, i) => g.output(gx, `g${i}`));
  const session = await ort.InferenceSession.create(g.toModel('none.bin'));

  const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
  const values = operands.map((o) => (o.ints ? o.ints : Array.from({ length: size(o.shape) }, () => rng.normal())));
  const rValues = Array.from({ length: size(y.shape as number[]) }, () => rng.normal());
  const feeds = (vals: number[][]) => {
    const out: Record<string, ort.Tensor> = { r: new ort.Tensor('float64', Float64Array.from(rValues), y.shape as number[]) };
    operands.forEach((o, i) => {
      out[`x${i}`] = o.ints
        ? new ort.Tensor('int64', BigInt64Array.from(vals[i], BigInt), o.shape)
        : new ort.Tensor('float64', Float64Array.from(vals[i]), o.shape);
    });
    return out;
  };
  const result = await session.run(feeds(values));
  const h = 1e-6;
  let gi = 0;
  for (let i = 0; i < operands.length; i++) {
    if (!xs[i].requiresGrad) continue;
    const analytic = result[`g${gi++}`].data as Float64Array;
    assert.deepEqual([...result[`g${gi - 1}`].dims], operands[i].shape, `${name}: gradient shape of input ${i}`);
    for (let j = 0; j < values[i].length; j++) {
      const at = (delta: number) => values.map((v, k) => (k === i ? v.map((x, m) => (m === j ? x + delta : x)) : v));
      const plus = ((await session.run(feeds(at(h)))).loss.data as Float64Array)[0];
      const minus = ((await session.run(feeds(at(-h)))).loss.data as Float64Array)[0];
      const numeric = (plus - minus) / (2 * h);
      const err = Math.abs(numeric - analytic[j]);
      assert.ok(err <= 1e-6 + 1e-5 * Math.abs(numeric), `${name}: d/dx${i}[${j}] analytic ${analytic[j]} vs numeric ${numeric}`);
    }
  }
  await session.release();
}

test('elementwise ops with broadcasting', async () => {
  await checkVjp('add', [{ shape: [2, 3] }, { shape: [3] }], op.add);
  await checkVjp('sub', [{ shape: [2, 1] }, { shape: [2, 3] }], op.sub);
  await checkVjp('mul', [{ shape: [2, 3, 2] }, { shape: [1, 3, 1] }], op.mul);
  await checkVjp('neg', [{ shape: [4] }], op.neg);
  await checkVjp('scale', [{ shape: [2, 2] }], (x) => op.scale(x, -0.7));
  await checkVjp('silu', [{ shape: [3, 4] }], op.silu);
  await checkVjp('softplus', [{ shape: [5] }], op.softplus);
  await checkVjp('sum', [{ shape: [2, 3] }], (x) => op.mul(op.sum(x), op.sum(x)));
});

test('matmul, batched and broadcast over the batch', async () => {
  await checkVjp('matmul', [{ shape: [2, 3, 4] }, { shape: [2, 4, 2] }], op.matmul);
  await checkVjp('matmul broadcast', [{ shape: [2, 2, 3, 4] }, { shape: [1, 2, 4, 3] }], op.matmul);
  await checkVjp('matmul 2D', [{ shape: [3, 5] }, { shape: [5, 1] }], op.matmul);
});

test('linear against a frozen weight, with and without bias', async () => {
  await checkVjp('linear', [{ shape: [3, 4] }, { shape: [5, 4], grad: false }], (x, w) => op.linear(x, w));
  await checkVjp('linear+bias', [{ shape: [2, 4] }, { shape: [3, 4], grad: false }, { shape: [3], grad: false }], (x, w, b) =>
    op.linear(x, w, b),
  );
});

test('rmsNorm and softmax', async () => {
  await checkVjp('rmsNorm', [{ shape: [3, 6] }, { shape: [6], grad: false }], (x, w) => op.rmsNorm(x, w, 1e-5));
  await checkVjp('softmax', [{ shape: [2, 3, 5] }], op.softmax);
});

test('rope in both layouts', async () => {
  for (const layout of ['half', 'interleaved'] as const) {
    await checkVjp(
      `rope ${layout}`,
      [{ shape: [1, 3, 2, 4] }, { shape: [1, 3, 1, 2], grad: false }, { shape: [1, 3, 1, 2], grad: false }],
      (x, c, s) => op.rope(x, c, s, layout),
    );
  }
});

test('shape ops: reshape, transpose, gatherRows, row', async () => {
  await checkVjp('reshape', [{ shape: [2, 6] }], (x) => op.reshape(x, [0, 3, -1], [2, 3, 2]));
  await checkVjp('transpose', [{ shape: [2, 3, 4] }], (x) => op.transpose(x, [2, 0, 1]));
  await checkVjp('gatherRows', [{ shape: [5, 3] }, { shape: [3], ints: [4, 0, 2] }], op.gatherRows);
  // A row gathered twice gets the sum of both gradients.
  await checkVjp('gatherRows, a row twice', [{ shape: [5, 3] }, { shape: [4], ints: [4, 0, 4, 2] }], op.gatherRows);
  await checkVjp('row', [{ shape: [3, 4] }], (x) => op.row(x, 1));
});

test('tokenLogProb', async () => {
  await checkVjp('tokenLogProb', [{ shape: [3, 7] }, { shape: [3], ints: [6, 0, 3] }], op.tokenLogProb);
});

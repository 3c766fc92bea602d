// The quantized linear layer (MatMulNBits, with GGUF blocks' offsets where mapped; Q6_K's blocks of 16) and its
// VJP: against finite differences where forward and backward hold the same matrix exactly,
// against the dequantized reference in JS, and against the float32 VJP.

import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { grad } from '../../kernels/autodiff';
import { Graph } from '../../kernels/graph';
import * as op from '../../kernels/ops';
import { mapBlocks } from '../../src/engine/ggml_blocks';
import { dequantize, QuantizedMatrix, quantizeMatrix, quantizeTransposed } from '../../src/engine/quantize';
import { dequantize as decodeGgml } from '../../src/model/ggml';
import { Rng } from '../../src/util/random';
import { f32ToF16 } from '../model/gguf_writer';
import { K_BLOCKS, kQuantBytes, q6KBytes } from '../model/kquants';

const f32 = (data: Float32Array, dims: number[]) => new ort.Tensor('float32', data, dims);
const u8 = (data: Uint8Array) => new ort.Tensor('uint8', data, [data.length]);

/** loss = Σ linear(x, W)·r and its gradient d loss/dx, W quantized; the quantized tensors are inputs. */
async function quantizedLinear(w: QuantizedMatrix, t: QuantizedMatrix, m: number, accuracyLevel: number) {
  const g = new Graph();
  const x = g.input('x', 'float', [m, w.cols], true);
  const r = g.input('r', 'float', [m, w.rows]);
  const matrix = (q: QuantizedMatrix, prefix: string): op.NBitsMatrix => ({
    data: g.input(`${prefix}data`, 'uint8', [q.rows, Math.ceil(q.cols / q.blockSize), (q.blockSize * q.bits) / 8]),
    scales: g.input(`${prefix}scales`, 'float', [q.scales.length]),
    zeroPoints: q.zeroPoints ? g.input(`${prefix}zeros`, 'uint8', [q.zeroPoints.length]) : undefined,
    mins: q.mins ? g.input(`${prefix}mins`, 'float', [q.cols / q.blockSize, q.rows]) : undefined,
    bits: q.bits,
    blockSize: q.blockSize,
    rows: q.rows,
    cols: q.cols,
  });
  const y = op.linear(x, { weight: matrix(w, 'w_'), transposed: () => matrix(t, 't_'), accuracyLevel });
  const loss = op.sum(op.mul(y, r));
  const [dx] = grad(loss, [x]);
  g.output(y, 'y');
  g.output(loss, 'loss');
  g.output(dx, 'dx');
  const session = await ort.InferenceSession.create(g.toModel('none.bin'));
  const weights: Record<string, ort.Tensor> = {};
  for (const [q, prefix] of [
    [w, 'w_'],
    [t, 't_'],
  ] as const) {
    weights[`${prefix}data`] = new ort.Tensor('uint8', q.data, [q.rows, Math.ceil(q.cols / q.blockSize), (q.blockSize * q.bits) / 8]);
    weights[`${prefix}scales`] = f32(q.scales, [q.scales.length]);
    if (q.zeroPoints) weights[`${prefix}zeros`] = u8(q.zeroPoints);
    if (q.mins) weights[`${prefix}mins`] = f32(q.mins, [q.cols / q.blockSize, q.rows]);
  }
  return async (xs: Float32Array, rs: Float32Array) => {
    const out = await session.run({ ...weights, x: f32(xs, [m, w.cols]), r: f32(rs, [m, w.rows]) });
    return { y: out.y.data as Float32Array, loss: (out.loss.data as Float32Array)[0], dx: out.dx.data as Float32Array };
  };
}

type Linear = Awaited<ReturnType<typeof quantizedLinear>>;

/**
 * Each dx[j] against the central difference of the loss. The loss is linear in x, so a large
 * step loses nothing but rounding.
 */
async function assertVjpIsFiniteDifference(run: Linear, x: Float32Array, r: Float32Array, dx: Float32Array, label: string) {
  const h = 0.05;
  for (let j = 0; j < x.length; j++) {
    const at = (d: number) => x.map((v, k) => (k === j ? v + d : v));
    const numeric = ((await run(at(h), r)).loss - (await run(at(-h), r)).loss) / (2 * h);
    assert.ok(Math.abs(numeric - dx[j]) <= 2e-3 * (1 + Math.abs(numeric)), `${label}dx[${j}]: analytic ${dx[j]} vs numeric ${numeric}`);
  }
}

/** a [m, k] · bᵀ for b [n, k], in float64. */
function matmulT(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) for (let l = 0; l < k; l++) out[i * n + j] += a[i * k + l] * b[j * k + l];
  return out;
}

function transposed(w: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = w[i * cols + j];
  return out;
}

const relError = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
};

const randoms = (rng: Rng, n: number) => Float32Array.from({ length: n }, () => rng.normal());

/**
 * Integer multiples of one power-of-two scale, every 32-block of every row and every column
 * holding both ends of the range: the row-wise and the column-wise
 * quantisations then both reproduce W exactly, so the VJP must be the exact
 * gradient of the forward pass.
 */
function exactlyQuantizable(n: number, bits: 4 | 8, rng: Rng): Float32Array {
  const [lo, hi] = bits === 4 ? [-8, 7] : [-127, 127];
  const w = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const inner = lo + 1 + Math.floor(rng.next() * (hi - lo - 1));
      w[i * n + j] = 2 ** -6 * (j % 32 === i % 32 ? lo : (j + 31) % 32 === i % 32 ? hi : inner);
    }
  }
  return w;
}

for (const bits of [8, 4] as const) {
  test(`q${bits} linear: the VJP is the finite-difference gradient when both quantisations are exact`, async () => {
    const rng = new Rng(bits);
    const n = 64;
    const w = exactlyQuantizable(n, bits, rng);
    const q = quantizeMatrix(w, n, n, bits);
    const t = quantizeTransposed(w, n, n, bits);
    assert.deepEqual(dequantize(q), w);
    assert.deepEqual(dequantize(t), transposed(w, n, n));
    const run = await quantizedLinear(q, t, 3, 0);
    const x = randoms(rng, 3 * n);
    const r = randoms(rng, 3 * n);
    const { dx } = await run(x, r);
    await assertVjpIsFiniteDifference(run, x, r, dx, '');
  });

  test(`q${bits} linear with a partial last block: forward and VJP match the dequantized matrices and the f32 VJP`, async () => {
    const rng = new Rng(10 + bits);
    const [rows, cols, m] = [40, 72, 5]; // 72 = 2 blocks of 32 + 8: MatMulNBits pads K
    const w = randoms(rng, rows * cols);
    const q = quantizeMatrix(w, rows, cols, bits);
    const t = quantizeTransposed(w, rows, cols, bits);
    const x = randoms(rng, m * cols);
    const r = randoms(rng, m * rows);
    for (const level of [0, 4]) {
      const { y, dx } = await run(q, t, m, level, x, r);
      // Level 0 computes in float32; level 4 rounds activations to int8 per block.
      const tolerance = level === 0 ? 1e-5 : 2e-2;
      assert.ok(relError(y, matmulT(x, dequantize(q), m, cols, rows)) < tolerance, `level ${level}: forward`);
      assert.ok(relError(dx, matmulT(r, dequantize(t), m, rows, cols)) < tolerance, `level ${level}: VJP`);
      // Against the float32 gradient dX = r·W: only the quantisation error of Wᵀ.
      const exact = matmulT(r, transposed(w, rows, cols), m, rows, cols);
      const bound = bits === 8 ? 0.01 : 0.1;
      assert.ok(relError(dx, exact) < bound, `level ${level}: ${relError(dx, exact)} from the f32 VJP`);
    }
  });
}

async function run(q: QuantizedMatrix, t: QuantizedMatrix, m: number, level: number, x: Float32Array, r: Float32Array) {
  return (await quantizedLinear(q, t, m, level))(x, r);
}

test('quantisation round trip: 8-bit error under 1 % of the weights, 4-bit under 10 %; zeros stay zero', () => {
  const rng = new Rng(5);
  const w = randoms(rng, 16 * 96);
  w.fill(0, 0, 96); // a row of zeros: scale 0 must not produce NaN
  assert.ok(relError(dequantize(quantizeMatrix(w, 16, 96, 8)), w) < 0.01);
  assert.ok(relError(dequantize(quantizeMatrix(w, 16, 96, 4)), w) < 0.1);
  assert.deepEqual(dequantize(quantizeMatrix(w, 16, 96, 4)).subarray(0, 96), new Float32Array(96));
  assert.throws(() => quantizeMatrix(w, 16, 96, 4, 24), /block size must be a power of two ≥ 16, got 24/);
});

/**
 * GGUF Q4_1 and Q4_K blocks of W [rows, cols] whose every 32-block is s·(e·q − c) with (e, c) drawn from
 * a few pairs with e·15 − c = 127: varied scales and offsets (mins), and the value 127·s (q = 15) on
 * the diagonal k ≡ n (mod 32), so that every 32-block of Wᵀ holds 127·s too and its 8-bit
 * quantisation is exact. Returns the bytes of both types and W itself.
 */
function offsetBlocks(rows: number, cols: number, rng: Rng) {
  const s = 2 ** -6;
  const pairs = [
    [9, 8],
    [10, 23],
    [12, 53],
  ];
  const w = new Float32Array(rows * cols);
  const params: [number, number][] = [];
  const q = new Int32Array(rows * cols);
  for (let n = 0; n < rows; n++) {
    for (let b = 0; b < cols / 32; b++) {
      const [e, c] = pairs[rng.int(pairs.length)];
      params.push([e, c]);
      for (let j = 0; j < 32; j++) {
        const k = b * 32 + j;
        q[n * cols + k] = k % 32 === n % 32 ? 15 : rng.int(16);
        w[n * cols + k] = s * (e * q[n * cols + k] - c);
      }
    }
  }
  const q41 = new Uint8Array((rows * cols * 20) / 32);
  const view = new DataView(q41.buffer);
  params.forEach(([e, c], b) => {
    view.setUint16(b * 20, f32ToF16(e * s), true);
    view.setUint16(b * 20 + 2, f32ToF16(-c * s), true);
    for (let j = 0; j < 16; j++) q41[b * 20 + 4 + j] = q[b * 32 + j] | (q[b * 32 + 16 + j] << 4);
  });
  const supers = Array.from({ length: (rows * cols) / 256 }, (_, i) => {
    const sub = params.slice(i * 8, i * 8 + 8);
    const values = Array.from(q.subarray(i * 256, (i + 1) * 256));
    return kQuantBytes(
      s,
      s,
      sub.map(([e]) => e),
      sub.map(([, c]) => c),
      values,
      4,
    );
  });
  const q4k = new Uint8Array(supers.length * 144);
  supers.forEach((bytes, i) => q4k.set(bytes, i * 144));
  return { w, blocks: { Q4_1: q41, Q4_K: q4k } };
}

for (const type of ['Q4_1', 'Q4_K'] as const) {
  test(`${type} blocks mapped with their offsets: the VJP is the finite-difference gradient, the forward ggml's matrix`, async () => {
    const rng = new Rng(type === 'Q4_1' ? 41 : 42);
    const [rows, cols, m] = [64, 256, 2];
    const { w, blocks } = offsetBlocks(rows, cols, rng);
    assert.deepEqual(decodeGgml(blocks[type], type), w, 'the blocks hold W');
    const t = quantizeTransposed(w, rows, cols, 8);
    assert.deepEqual(dequantize(t), transposed(w, rows, cols), 'Wᵀ is exact at 8 bits');
    for (const bits of [4, 8] as const) {
      const q = mapBlocks(blocks[type], type, rows, cols, bits);
      assert.ok(q.mins, 'offsets');
      assert.deepEqual(dequantize(q), w, `the mapped ${bits}-bit blocks and offsets hold W`);
      const run = await quantizedLinear(q, t, m, 0);
      const x = randoms(rng, m * cols);
      const r = randoms(rng, m * rows);
      const { y, dx } = await run(x, r);
      assert.ok(relError(y, matmulT(x, w, m, cols, rows)) < 1e-6, `${bits} bits: forward`);
      await assertVjpIsFiniteDifference(run, x, r, dx, `${bits} bits, `);
    }
  });
}

/**
 * Q6_K blocks of W [rows, cols] holding only 0 and ±127·d per sub-block (q − 32 ∈ {−1, 0, 1}, sc = ±127),
 * d a power of two per 32 rows and super-block column, ±127·d on the diagonal k ≡ n (mod 32): the 16
 * sub-block scales of a row vary in sign and size, while every 32-block of Wᵀ holds 0 and ±its largest
 * magnitude 127·d, so that its 8-bit quantisation is exact.
 */
function q6Blocks(rows: number, cols: number, rng: Rng) {
  const w = new Float32Array(rows * cols);
  const bytes = new Uint8Array((rows * cols * 210) / 256);
  const ds = Array.from({ length: (rows / 32) * (cols / 256) }, () => 2 ** -(5 + rng.int(3)));
  for (let n = 0; n < rows; n++) {
    for (let c = 0; c < cols / 256; c++) {
      const d = ds[(n >> 5) * (cols / 256) + c];
      const sc = Array.from({ length: 16 }, () => (rng.int(2) ? 127 : -127));
      const q = Array.from({ length: 256 }, (_, i) => 32 + ((c * 256 + i) % 32 === n % 32 ? 1 : rng.int(3) - 1));
      q.forEach((qi, i) => (w[n * cols + c * 256 + i] = d * sc[i >> 4] * (qi - 32)));
      bytes.set(q6KBytes(d, sc, q), ((n * cols) / 256 + c) * 210);
    }
  }
  return { w, bytes };
}

test("Q6_K blocks mapped as 8-bit blocks of 16: the VJP is the finite-difference gradient, the forward ggml's matrix", async () => {
  const rng = new Rng(44);
  const [rows, cols, m] = [64, 512, 2];
  const { w, bytes } = q6Blocks(rows, cols, rng);
  assert.deepEqual(decodeGgml(bytes, 'Q6_K'), w, 'the blocks hold W');
  const t = quantizeTransposed(w, rows, cols, 8);
  // (−0 where sc < 0 and q = 32: its quantisation gives +0.)
  assert.deepEqual(
    dequantize(t),
    transposed(w, rows, cols).map((v) => v + 0),
    'Wᵀ is exact at 8 bits',
  );
  const q = mapBlocks(bytes, 'Q6_K', rows, cols, 8);
  assert.equal(q.blockSize, 16);
  assert.deepEqual(dequantize(q), w, 'the mapped blocks hold W');
  for (const level of [0, 4]) {
    const run = await quantizedLinear(q, t, m, level);
    const x = randoms(rng, m * cols);
    const r = randoms(rng, m * rows);
    const { y, dx } = await run(x, r);
    // Level 4 would round activations to int8 per block where onnxruntime has such a kernel.
    const forward = relError(y, matmulT(x, w, m, cols, rows));
    assert.ok(forward < (level === 0 ? 1e-6 : 1e-2), `level ${level}: forward ${forward}`);
    await assertVjpIsFiniteDifference(run, x, r, dx, `level ${level}, `);
  }
});

test('Q4_K blocks mapped at 4 bits, accuracy level 4, with the Wᵀ the engine quantizes: forward and VJP against float32', async () => {
  const rng = new Rng(43);
  const [rows, cols, m] = [96, 512, 5];
  const blocks = Array.from({ length: (rows * cols) / 256 }, () => K_BLOCKS.Q4_K(rng));
  const bytes = new Uint8Array(blocks.length * 144);
  blocks.forEach((b, i) => bytes.set(b.bytes, i * 144));
  const w = decodeGgml(bytes, 'Q4_K');
  const q = mapBlocks(bytes, 'Q4_K', rows, cols, 4);
  const t = quantizeTransposed(w, rows, cols, 4);
  const x = randoms(rng, m * cols);
  const r = randoms(rng, m * rows);
  for (const level of [0, 4]) {
    const { y, dx } = await run(q, t, m, level, x, r);
    const forward = relError(y, matmulT(x, w, m, cols, rows));
    // Level 0: float rounding only. Level 4 rounds activations to int8 per block (not the offsets' sums).
    assert.ok(forward < (level === 0 ? 1e-6 : 1e-2), `level ${level}: forward ${forward}`);
    const backward = relError(dx, matmulT(r, transposed(w, rows, cols), m, rows, cols));
    assert.ok(backward < 0.1, `level ${level}: VJP ${backward} from the f32 VJP`);
  }
});

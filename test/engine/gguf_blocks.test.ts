// GGUF block-quantized tensors served as MatMulNBits blocks: Q8_0/Q4_0/Q4_1/Q4_K/Q5_K/Q6_K
// blocks mapped value for value (ggml's reference decoding, Q4_1/K-quant offsets up to
// float rounding), and the weights file holding the mapped bytes that
// the engine's MatMulNBits nodes read (their NLL: test/engine/gguf.test.ts).

import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { test } from 'node:test';
import { nbitsEntries } from '../../kernels/llama';
import { stepGraph } from '../../kernels/graphs';
import { Engine } from '../../src/engine/engine';
import { mapBlocks } from '../../src/engine/ggml_blocks';
import { dequantize, parseQuantization, tensorStorage, type Quantization } from '../../src/engine/quantize';
import { storagePlan, weightsFile, WEIGHTS_FILE } from '../../src/engine/weights';
import { dequantize as decodeGgml } from '../../src/model/ggml';
import { importGguf } from '../../src/model/gguf';
import type { BaseModel, GgmlType } from '../../src/model/types';
import { readBytes } from '../../src/model/weights';
import { Rng } from '../../src/util/random';
import { quantizeQ4_0, quantizeQ4_1, quantizeQ8_0, writeStoriesGguf } from '../model/gguf_writer';
import { aligner } from '../cli/cli';
import { K_BLOCKS, kQuantModel } from '../model/kquants';
import { STORIES, tempDir } from '../model/paths';

const dir = tempDir();

/** Largest |a − b| relative to the largest |b| of its row: float32 rounding only when ≤ a few 2^-24. */
function rowError(a: Float32Array, b: Float32Array, cols: number): number {
  let worst = 0;
  for (let r = 0; r < b.length / cols; r++) {
    let scale = 0;
    let err = 0;
    for (let c = r * cols; c < (r + 1) * cols; c++) {
      scale = Math.max(scale, Math.abs(b[c]));
      err = Math.max(err, Math.abs(a[c] - b[c]));
    }
    if (scale > 0) worst = Math.max(worst, err / scale);
  }
  return worst;
}

test('Q8_0, Q4_0, Q4_1, Q4_K, Q5_K and Q6_K blocks map onto MatMulNBits blocks with the values of ggml’s decoding', () => {
  const rng = new Rng(5);
  const [rows, cols] = [6, 96];
  const x = Float32Array.from({ length: rows * cols }, () => rng.normal() * 0.1);
  // A zero block (scale 0) and a block whose largest magnitude is positive (Q4_0's d < 0).
  x.fill(0, 0, 32);
  x.set([0.5], 40);
  for (const [type, bytes, bits] of [
    ['Q8_0', quantizeQ8_0(x), 8],
    ['Q4_0', quantizeQ4_0(x), 4],
    ['Q4_0', quantizeQ4_0(x), 8],
  ] as const) {
    const q = mapBlocks(bytes, type, rows, cols, bits);
    assert.equal(q.zeroPoints, undefined, 'symmetric: the implicit zero point');
    assert.equal(q.mins, undefined, 'no offsets');
    assert.deepEqual(dequantize(q), decodeGgml(bytes, type), `${type} as ${bits}-bit blocks`);
  }
  // The offset types: the same integers (centred) and scales, their offsets (plus the centre) as mins,
  // so only the offset's sum is rounded anew. K-quant rows are super-blocks of 256 with 6-bit
  // sub-block scales and mins, built from known integers (test/model/kquants.ts).
  const kRows = (type: keyof typeof K_BLOCKS, n: number) => {
    const blocks = Array.from({ length: n * 2 }, () => K_BLOCKS[type](rng));
    const bytes = new Uint8Array(blocks.reduce((a, b) => a + b.bytes.length, 0));
    blocks.reduce((at, b) => (bytes.set(b.bytes, at), at + b.bytes.length), 0);
    return { bytes, values: Float32Array.from(blocks.flatMap((b) => b.values)) };
  };
  const q4k = kRows('Q4_K', 3);
  const q5k = kRows('Q5_K', 3);
  const q41 = quantizeQ4_1(x);
  for (const [type, bytes, n, k, bits] of [
    ['Q4_1', q41, rows, cols, 4],
    ['Q4_1', q41, rows, cols, 8],
    ['Q4_K', q4k.bytes, 3, 512, 4],
    ['Q4_K', q4k.bytes, 3, 512, 8],
    ['Q5_K', q5k.bytes, 3, 512, 8],
  ] as const) {
    const q = mapBlocks(bytes, type, n, k, bits);
    assert.equal(q.zeroPoints, undefined, `${type}: symmetric blocks`);
    assert.equal(q.mins?.length, (n * k) / 32, `${type}: one offset per block`);
    const reference = decodeGgml(bytes, type);
    const err = rowError(dequantize(q), reference, k);
    assert.ok(err <= 2 ** -22, `${type} as ${bits}-bit blocks: ${err} from ggml's decoding`);
  }
  // Q6_K: each sub-block of 16 is an 8-bit block of 16 with scale d·sc, no offsets: ggml's values exactly.
  const q6k = kRows('Q6_K', 3);
  const q6 = mapBlocks(q6k.bytes, 'Q6_K', 3, 512, 8);
  assert.deepEqual([q6.blockSize, q6.zeroPoints, q6.mins], [16, undefined, undefined]);
  assert.deepEqual(dequantize(q6), decodeGgml(q6k.bytes, 'Q6_K'), 'Q6_K as 8-bit blocks of 16');
  // The K-quant decoding itself against the values the blocks were built from.
  assert.deepEqual(decodeGgml(q4k.bytes, 'Q4_K'), q4k.values);
  assert.deepEqual(decodeGgml(q5k.bytes, 'Q5_K'), q5k.values);
  assert.deepEqual(decodeGgml(q6k.bytes, 'Q6_K'), q6k.values);
  assert.throws(() => mapBlocks(q41.subarray(1), 'Q4_1', rows, cols, 4), /Q4_1: expected 360 bytes for \[6, 96\], got 359/);
  assert.throws(() => mapBlocks(q5k.bytes, 'Q5_K', 3, 512, 4), /Q5_K blocks do not map onto 4-bit MatMulNBits blocks/);
  assert.throws(() => mapBlocks(q6k.bytes, 'Q6_K', 3, 512, 4), /Q6_K blocks do not map onto 4-bit MatMulNBits blocks/);
});

test('which stored types map directly and which are requantized, at each quantization', () => {
  const config = { tieWordEmbeddings: false } as BaseModel['config'];
  const q = 'model.layers.0.self_attn.q_proj.weight';
  const v = 'model.layers.0.self_attn.v_proj.weight';
  const cases: [GgmlType, Quantization, string, object][] = [
    ['Q8_0', 'stored', q, { bits: 8, mapped: true }],
    ['Q4_0', 'stored', q, { bits: 4, mapped: true }],
    ['Q4_1', 'stored', q, { bits: 4, mapped: true }],
    ['Q4_K', 'stored', q, { bits: 4, mapped: true }],
    ['Q4_K', 'q8', q, { bits: 8, mapped: true }],
    ['Q5_K', 'stored', q, { bits: 8, mapped: true }],
    ['Q5_K', 'q4', q, { bits: 4, mapped: false }],
    ['Q6_K', 'stored', q, { bits: 8, mapped: true }],
    ['Q6_K', 'q8', q, { bits: 8, mapped: true }],
    ['Q6_K', 'q4', q, { bits: 4, mapped: false }],
    ['F16', 'stored', q, { mapped: false }],
    ['Q4_0', 'q8', q, { bits: 8, mapped: true }],
    ['Q8_0', 'q4', q, { bits: 4, mapped: false }],
    ['Q8_0', 'q4', v, { bits: 8, mapped: true }],
    ['Q8_0', 'f32', q, { mapped: false }],
    ['Q8_0', 'stored', 'model.embed_tokens.weight', { mapped: false }],
  ];
  for (const [dtype, quantization, name, expected] of cases) {
    assert.deepEqual(tensorStorage(name, dtype, quantization, config), expected, `${dtype} at ${quantization} (${name})`);
  }
});

test('stories260K as Q8_0, Q4_0 and Q4_1 GGUF: the weights file holds its blocks, read by MatMulNBits nodes', async () => {
  // Their NLL (llama.cpp's on the same files, and the decoded blocks'): test/engine/gguf.test.ts.
  const cacheDir = path.join(dir, 'cache');
  for (const type of ['Q8_0', 'Q4_0', 'Q4_1'] as const) {
    const file = path.join(dir, `stories260K-${type}.gguf`);
    await writeStoriesGguf(file, type);
    const model = await importGguf(file);
    // No --quant: the file's own quantization.
    const quantization = parseQuantization(undefined, model, '--quant');
    assert.equal(quantization, 'stored');
    // The GGUF's blocks, and no float32 copy of those layers.
    const { dir: weightsDir, index } = weightsFile(model, cacheDir, { quantization });
    const file32 = fs.readFileSync(path.join(weightsDir, WEIGHTS_FILE));
    const graph = stepGraph(model.config, index);
    const plan = storagePlan(model, quantization).filter((p) => p.bits !== undefined);
    const mapped = plan.filter((p) => p.mapped);
    // Every Q8_0/Q4_0/Q4_1 matrix is mapped (the head is Q8_0 in all three files).
    assert.equal(mapped.length, plan.length);
    assert.ok(mapped.length >= model.config.numLayers * 5, `${type}: ${mapped.length} mapped matrices`);
    for (const { name, bits } of mapped) {
      const ref = model.weights.tensors.get(name)!;
      const [rows, cols] = ref.shape;
      const expected = mapBlocks(readBytes(ref, 0, ref.byteLength), ref.dtype, rows, cols, bits!);
      const e = nbitsEntries(name);
      const at = index.get(e.data).offset;
      assert.deepEqual(file32.subarray(at, at + expected.data.byteLength), Buffer.from(expected.data), `${name} blocks`);
      assert.ok(!index.has(e.zeroPoints), `${name}: symmetric, no zero points`);
      if (expected.mins) {
        const m = index.get(e.mins);
        assert.deepEqual(
          new Float32Array(file32.buffer.slice(file32.byteOffset + m.offset, file32.byteOffset + m.offset + expected.mins.byteLength)),
          expected.mins,
          `${name} offsets`,
        );
        assert.ok(
          graph.nodes.some((n) => n.opType === 'MatMul' && n.input?.[1] === e.mins),
          `${name}: a MatMul adds the blocks' offsets`,
        );
      } else assert.ok(!index.has(e.mins), `${name}: no offsets`);
      if (name !== 'model.embed_tokens.weight') assert.ok(!index.has(name), `${name}: no float32 copy`);
      assert.ok(
        graph.nodes.some((n) => n.opType === 'MatMulNBits' && n.input?.[1] === e.data),
        `${name}: a MatMulNBits node reads the mapped blocks`,
      );
    }
  }
});

test('K-quant tensors in the weights cache: Q4_K/Q5_K blocks mapped with their offsets, Q6_K in blocks of 16', async () => {
  const file = path.join(dir, 'kquant.gguf');
  kQuantModel(file);
  const model = await importGguf(file);
  const quantization = parseQuantization(undefined, model, '--quant');
  assert.equal(quantization, 'stored');
  const plan = storagePlan(model, quantization);
  const served = (type: string) => [
    ...new Set(plan.filter((p) => p.dtype === type && p.bits !== undefined).map((p) => `${p.bits} ${p.mapped}`)),
  ];
  assert.deepEqual([served('Q4_K'), served('Q5_K'), served('Q6_K')], [['4 true'], ['8 true'], ['8 true']]);
  const cacheDir = path.join(dir, 'cache');
  const { dir: weightsDir, index } = weightsFile(model, cacheDir, { quantization });
  const bytes = fs.readFileSync(path.join(weightsDir, WEIGHTS_FILE));
  const relError = (a: ArrayLike<number>, b: ArrayLike<number>) => {
    let err = 0;
    let norm = 0;
    for (let i = 0; i < b.length; i++) {
      err += (a[i] - b[i]) ** 2;
      norm += b[i] ** 2;
    }
    return Math.sqrt(err / norm);
  };
  for (const { name, bits, mapped } of plan.filter((p) => p.bits !== undefined)) {
    const [rows, cols] = model.weights.tensors.get(name)!.shape;
    const e = nbitsEntries(name);
    const read = (data: string, scales: string, zeros: string, n: number, k: number, mins?: string) => {
      const slice = (entry: string, length: number) =>
        new Uint8Array(bytes.subarray(index.get(entry).offset, index.get(entry).offset + length));
      const blockSize = index.get(data).blockSize!;
      const blocks = (n * k) / blockSize;
      return dequantize({
        bits: bits!,
        blockSize,
        rows: n,
        cols: k,
        data: slice(data, (blocks * blockSize * bits!) / 8),
        scales: new Float32Array(slice(scales, 4 * blocks).buffer),
        zeroPoints: index.has(zeros) ? slice(zeros, n * Math.ceil(k / 64)) : undefined,
        mins: mins && index.has(mins) ? new Float32Array(slice(mins, 4 * blocks).buffer) : undefined,
      });
    };
    const exact = model.weights.f32(name);
    const exactT = new Float32Array(exact.length);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) exactT[c * rows + r] = exact[r * cols + c];
    // Mapped: ggml's values up to the rounding of the offsets' sums. Requantized: about half a step of
    // the new blocks, relative to the weights' spread; so is the Wᵀ of the backward pass (decoded from
    // the GGUF blocks 32 rows at a time).
    const forward = read(e.data, e.scales, e.zeroPoints, rows, cols, e.mins);
    if (mapped) assert.ok(rowError(forward, exact, cols) <= 2 ** -22, `${name}: mapped blocks`);
    if (model.weights.tensors.get(name)!.dtype === 'Q6_K') assert.deepEqual(forward, exact, `${name}: Q6_K blocks, no offsets`);
    const bound = bits === 8 ? 0.01 : 0.12;
    const backward = relError(read(e.transposedData, e.transposedScales, e.transposedZeroPoints, cols, rows), exactT);
    assert.ok(
      relError(forward, exact) < bound && backward < bound,
      `${name}: relative error ${relError(forward, exact)} (W), ${backward} (Wᵀ)`,
    );
  }
  // The engine's graph multiplies Q6_K's blocks of 16 as such, and its logits are the decoded model's up to
  // the int8 activations of the Q4_K/Q5_K products (accuracy_level 4: 2e-2, as in test/kernels/nbits.test.ts; 0.7e-2 seen).
  const graph = stepGraph(model.config, index);
  for (const { name } of plan.filter((p) => p.dtype === 'Q6_K' && p.bits !== undefined)) {
    const node = graph.nodes.find((n) => n.opType === 'MatMulNBits' && n.input?.[1] === nbitsEntries(name).data);
    assert.equal(Number(node?.attribute?.find((a) => a.name === 'block_size')?.i), 16, `${name}: MatMulNBits block_size`);
  }
  const ids = [[1, 40, 300, 7, 511, 2, 90]];
  const logitsAt = async (q: Quantization) => {
    const engine = await Engine.create(model, { cacheDir, quantization: q });
    return (await engine.logits(ids, [null]).finally(() => engine.dispose()))[0];
  };
  const [stored, decoded] = [await logitsAt('stored'), await logitsAt('f32')];
  assert.ok(relError(stored, decoded) < 2e-2, `logits on the blocks vs decoded: ${relError(stored, decoded)}`);
});

test('aligner inspect-model reports per stored type what is mapped and what is requantized', async () => {
  const file = path.join(dir, 'kquant-cli.gguf');
  kQuantModel(file);
  const asStored = aligner('inspect-model', '--model', file);
  assert.equal(asStored.status, 0, asStored.stderr);
  const report = JSON.parse(asStored.stdout);
  assert.equal(report.quantization, 'stored');
  assert.deepEqual(report.served, {
    Q6_K: { 'mapped 8-bit': 3, f32: 1 },
    F32: { f32: 3 },
    Q4_K: { 'mapped 4-bit': 3 },
    Q5_K: { 'mapped 8-bit': 2 },
  });
  const q4 = path.join(dir, 'stories260K-Q4_0-cli.gguf');
  await writeStoriesGguf(q4, 'Q4_0');
  const atQ8 = JSON.parse(aligner('inspect-model', '--model', q4, '--quant', 'q8').stdout);
  assert.deepEqual(atQ8.served, {
    Q8_0: { 'mapped 8-bit': 1 },
    F32: { f32: 11 },
    Q4_0: { 'mapped 8-bit': 30 },
    F16: { 'quantized 8-bit': 5 },
  });
  const bad = aligner('inspect-model', '--model', STORIES, '--quant', 'stored');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--quant: "stored" serves a GGUF file's quantized blocks/);
});

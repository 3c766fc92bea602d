// `npm run -s bench:nbits [N K]`: the cost of one quantized linear layer on one token (x [1, K],
// W [N, K], default 4864 × 896, Qwen2.5-0.5B's MLP), per way a GGUF block type is served: Q4_0
// mapped, Q4_1 mapped with its offsets (kernels/ops.ts matMulNBits), Q4_1 requantized to 8 bits,
// our own asymmetric q4, and Q6_K mapped (8-bit blocks of 16) or requantized (8-bit blocks of 32). One thread, the weights as memory-mapped initializers (so that
// onnxruntime prepacks them, as in the engine), rounds alternated; prints one JSON line per way.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { Graph } from '../../kernels/graph';
import { matMulNBits } from '../../kernels/ops';
import { mapBlocks } from '../../src/engine/ggml_blocks';
import { QuantizedMatrix, quantizeMatrix } from '../../src/engine/quantize';
import { dequantize } from '../../src/model/ggml';
import { Rng } from '../../src/util/random';
import { quantizeQ4_0, quantizeQ4_1 } from '../model/gguf_writer';
import { K_BLOCKS } from '../model/kquants';
import { tempDir } from '../model/paths';
import { median } from './stats';

const ROUNDS = 15;
const CALLS = 200;

/** A session computing x · Wᵀ for the quantized W, its tensors in a weights file of its own. */
async function session(q: QuantizedMatrix, dir: string, rng: Rng): Promise<() => Promise<void>> {
  const g = new Graph();
  const parts: Uint8Array[] = [];
  let at = 0;
  const weight = (name: string, shape: number[], type: 'float' | 'uint8', bytes: ArrayBufferView) => {
    const pad = (4096 - (at % 4096)) % 4096;
    parts.push(new Uint8Array(pad), new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    const v = g.weight(name, shape, at + pad, type);
    at += pad + bytes.byteLength;
    return v;
  };
  const x = g.input('x', 'float', [1, q.cols]);
  const matrix = {
    data: weight('data', [q.rows, q.cols / q.blockSize, (q.blockSize * q.bits) / 8], 'uint8', q.data),
    scales: weight('scales', [q.scales.length], 'float', q.scales),
    zeroPoints: q.zeroPoints ? weight('zeros', [q.zeroPoints.length], 'uint8', q.zeroPoints) : undefined,
    mins: q.mins ? weight('mins', [q.cols / q.blockSize, q.rows], 'float', q.mins) : undefined,
    bits: q.bits,
    blockSize: q.blockSize,
    rows: q.rows,
    cols: q.cols,
  };
  g.output(matMulNBits(x, matrix, 4), 'y');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'weights.bin'), Buffer.concat(parts));
  fs.writeFileSync(path.join(dir, 'model.onnx'), g.toModel('weights.bin'));
  const s = await ort.InferenceSession.create(path.join(dir, 'model.onnx'), { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const feeds = {
    x: new ort.Tensor(
      'float32',
      Float32Array.from({ length: q.cols }, () => rng.normal()),
      [1, q.cols],
    ),
  };
  return async () => {
    await s.run(feeds);
  };
}

async function main(): Promise<void> {
  const [N, K] = [Number(process.argv[2] ?? 4864), Number(process.argv[3] ?? 896)];
  const rng = new Rng(1);
  const w = Float32Array.from({ length: N * K }, () => rng.normal() * 0.05);
  const q41 = quantizeQ4_1(w);
  // Q6_K super-blocks of random parameters (test/model/kquants.ts): the product's cost does not depend on the values.
  const q6k = new Uint8Array((N * K * 210) / 256);
  for (let b = 0; b < (N * K) / 256; b++) q6k.set(K_BLOCKS.Q6_K(rng).bytes, b * 210);
  const ways: Record<string, QuantizedMatrix> = {
    'Q4_0 mapped': mapBlocks(quantizeQ4_0(w), 'Q4_0', N, K, 4),
    'Q4_1 mapped + offsets': mapBlocks(q41, 'Q4_1', N, K, 4),
    'Q4_1 requantized to 8 bits': quantizeMatrix(dequantize(q41, 'Q4_1'), N, K, 8),
    'q4 (asymmetric, zero points)': quantizeMatrix(w, N, K, 4),
    'Q6_K mapped (8-bit blocks of 16)': mapBlocks(q6k, 'Q6_K', N, K, 8),
    'Q6_K requantized to 8 bits (blocks of 32)': quantizeMatrix(dequantize(q6k, 'Q6_K'), N, K, 8),
  };
  const dir = tempDir();
  const runs: Record<string, () => Promise<void>> = {};
  for (const [i, [name, q]] of Object.entries(ways).entries()) runs[name] = await session(q, path.join(dir, String(i)), rng);
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(ways).map((name) => [name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, run] of Object.entries(runs)) {
      await run();
      const t = process.hrtime.bigint();
      for (let i = 0; i < CALLS; i++) await run();
      times[name].push(Number(process.hrtime.bigint() - t) / CALLS / 1e6);
    }
  }
  const base = median(times['Q4_0 mapped']);
  for (const [name, ms] of Object.entries(times)) {
    const m = median(ms);
    console.log(
      JSON.stringify({
        matrix: `${N}x${K}`,
        way: name,
        median_ms: +m.toFixed(4),
        vs_q4_0: +(m / base).toFixed(3),
        threads: 1,
        load_avg: os.loadavg()[0],
      }),
    );
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

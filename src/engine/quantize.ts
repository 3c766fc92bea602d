// Block-wise quantisation of frozen matrices in the layout of onnxruntime's
// MatMulNBits (com.microsoft): the one representation every quantized linear
// layer uses, and the one GGUF's Q8_0/Q4_0/Q4_1/Q4_K/Q5_K/Q6_K blocks map onto (the same
// blocks, one scale each, per-block offsets where the type has them: see ggml_blocks.ts).

import { expectedWeights } from '../model/weights';
import type { BaseModel, GgmlType, ModelConfig } from '../model/types';
import { GGML_BLOCK, isQuantType, mapsExactly, storedBits } from './ggml_blocks';

/**
 * How the frozen linear layers are stored: float32, 8-/4-bit blocks, or `stored`: as a GGUF file
 * holds them (Q8_0/Q4_0/Q4_1/Q4_K/Q5_K/Q6_K blocks used as they are).
 */
export type Quantization = 'f32' | 'q8' | 'q4' | 'stored';
/** The storages any model can be given ('stored' needs a GGUF file with quantized layers). */
export const QUANTIZATIONS = ['f32', 'q8', 'q4'] as const;

/** llama.cpp's Q8_0/Q4_0 block: 32 weights per scale. MatMulNBits takes any power of two ≥ 16. */
export const DEFAULT_BLOCK_SIZE = 32;

/** Below this many parameters f32 is fast and small enough; at and above, 4-bit is the default. */
export const QUANTIZE_FROM_PARAMS = 300e6;

/**
 * The quantization a model gets when the user names none: as stored when its file holds
 * block-quantized linear layers (a GGUF Q4_K_M stays 4-bit), else q4 from 300M parameters, f32 below.
 */
export function defaultQuantization(model: Pick<BaseModel, 'config' | 'weights'>): Quantization {
  if (hasQuantizedLinears(model)) return 'stored';
  let params = 0;
  for (const shape of expectedWeights(model.config).values()) params += shape.reduce((a, b) => a * b, 1);
  return params >= QUANTIZE_FROM_PARAMS ? 'q4' : 'f32';
}

function hasQuantizedLinears(model: Pick<BaseModel, 'config' | 'weights'>): boolean {
  return [...model.weights.tensors.values()].some((t) => isLinear(t.name, model.config) && isQuantType(t.dtype));
}

/** 'auto' (or nothing) picks defaultQuantization; anything else must be a known name. `where` names the flag or setting. */
export function parseQuantization(value: string | undefined, model: Pick<BaseModel, 'config' | 'weights'>, where: string): Quantization {
  if (value === undefined || value === 'auto') return defaultQuantization(model);
  if (!(QUANTIZATIONS as readonly string[]).includes(value) && value !== 'stored')
    throw new Error(`${where}: expected auto, f32, q8, q4 or stored, got "${value}"`);
  if (value === 'stored' && !hasQuantizedLinears(model))
    throw new Error(`${where}: "stored" serves a GGUF file's quantized blocks, but this model's linear layers are not block-quantized`);
  return value as Quantization;
}

/** Bumped whenever quantizeMatrix or the mapping of GGUF blocks changes its output, so cached quantized weights are redone. */
export const QUANTIZER_VERSION = 6;

/** Linear layers that can be quantized: every projection and the LM head (the embedding too when it is the head). */
const LINEAR = /(\.(q|k|v|o|gate|up|down)_proj\.weight|^lm_head\.weight)$/;

export function isLinear(name: string, config: ModelConfig): boolean {
  return LINEAR.test(name) || (config.tieWordEmbeddings && name === 'model.embed_tokens.weight');
}

/**
 * How one weight is served: float32 (no `bits`), or MatMulNBits blocks of `bits`, `mapped` when
 * they are the stored GGUF blocks themselves (see ggml_blocks.ts) rather than quantized from float32.
 */
export interface TensorStorage {
  bits?: 4 | 8;
  mapped: boolean;
}

export function tensorStorage(
  name: string,
  dtype: GgmlType,
  quantization: Quantization,
  config: ModelConfig,
  blockSize = DEFAULT_BLOCK_SIZE,
): TensorStorage {
  if (quantization === 'f32' || !isLinear(name, config)) return { mapped: false };
  const bits = quantization === 'stored' ? storedBits(dtype) : bitsFor(name, quantization);
  if (bits === undefined) return { mapped: false };
  return { bits, mapped: blockSize === GGML_BLOCK && mapsExactly(dtype, bits) };
}

/**
 * Bits of one linear layer's weight. q4 keeps the layers that 4 bits hurt most
 * at 8 bits, as llama.cpp's Q4_K_M does (its output, attn_v and ffn_down get
 * more bits): on stories260K the validation NLL rises 10.5 % with everything at
 * 4 bits, 6.8 % with only v and down at 8, and 4.9 % with these three at 8
 * (test/engine/quantized.test.ts). The first two decode qwen05b 1.22× and 1.11×
 * faster (README, "A 4-bit head, or Q4_0's choices?"); the 5 % bound decides.
 */
export function bitsFor(name: string, quantization: 'q8' | 'q4'): 4 | 8 {
  if (quantization === 'q8') return 8;
  return /(v_proj|down_proj)\.weight$|^lm_head\.weight$|^model\.embed_tokens\.weight$/.test(name) ? 8 : 4;
}

/**
 * A matrix W [rows N, cols K] (Hugging Face [out, in], so y = x·Wᵀ) in blocks of
 * `blockSize` consecutive columns:
 *   W[n, k] ≈ (q[n, k] − zero[n, ⌊k/blockSize⌋]) · scale[n, ⌊k/blockSize⌋]
 * K is zero-padded to whole blocks (MatMulNBits' `K` attribute keeps the true width).
 */
export interface QuantizedMatrix {
  bits: 4 | 8;
  blockSize: number;
  rows: number;
  cols: number;
  /** uint8 [N, blocksPerRow, blockSize·bits/8]; 4-bit values two per byte, element 2i in the low nibble. */
  data: Uint8Array;
  /** float32 [N · blocksPerRow]. */
  scales: Float32Array;
  /**
   * Absent: the symmetric zero point 2^(bits−1) (8 or 128), which MatMulNBits assumes.
   * Else uint8 [N · ⌈blocksPerRow·bits/8⌉], 4-bit ones packed like `data` (asymmetric formats such as Q4_1).
   */
  zeroPoints?: Uint8Array;
  /**
   * float32 [blocksPerRow, N]: per-block offsets added to the blocks' values, W[n, k] = (q − zero)·scale +
   * mins[⌊k/blockSize⌋, n]; only GGUF blocks mapped as they are have them (Q4_1, Q4_K, Q5_K: see ggml_blocks.ts).
   */
  mins?: Float32Array;
}

export function blocksPerRow(cols: number, blockSize: number): number {
  return Math.ceil(cols / blockSize);
}

/** The byte sizes of a matrix's `data`, `scales` and `zeroPoints` (0: symmetric), for laying out files before quantising. */
export function quantizedSizes(
  rows: number,
  cols: number,
  bits: 4 | 8,
  blockSize: number,
): { data: number; scales: number; zeroPoints: number } {
  const perRow = blocksPerRow(cols, blockSize);
  return {
    data: (rows * perRow * blockSize * bits) / 8,
    scales: 4 * rows * perRow,
    zeroPoints: bits === 4 ? rows * Math.ceil(perRow / 2) : 0,
  };
}

/**
 * 8-bit: symmetric, as llama.cpp's Q8_0 (scale = max|w| / 127, zero point 128).
 * 4-bit: asymmetric with a searched range (see bestRange4). Element (n, k) is read at `w[n·rowStride + k·colStride]`,
 * so a transposed copy needs no transposed float matrix.
 */
export function quantizeMatrix(
  w: Float32Array,
  rows: number,
  cols: number,
  bits: 4 | 8,
  blockSize = DEFAULT_BLOCK_SIZE,
  stride: { row: number; col: number } = { row: cols, col: 1 },
): QuantizedMatrix {
  if (!Number.isInteger(Math.log2(blockSize)) || blockSize < 16)
    throw new Error(`quantization block size must be a power of two ≥ 16, got ${blockSize}`);
  const perRow = blocksPerRow(cols, blockSize);
  const sizes = quantizedSizes(rows, cols, bits, blockSize);
  const data = new Uint8Array(sizes.data);
  const scales = new Float32Array(rows * perRow);
  const max = (1 << bits) - 1;
  const bytesPerBlock = (blockSize * bits) / 8;
  // 4-bit blocks carry their own zero point (asymmetric, as Q4_1): 16 levels over [min, max]
  // instead of over [−max|w|, max|w|] halves the error on lopsided blocks.
  const zpBytesPerRow = Math.ceil(perRow / 2);
  const zeroPoints = bits === 4 ? new Uint8Array(rows * zpBytesPerRow) : undefined;
  for (let n = 0; n < rows; n++) {
    for (let b = 0; b < perRow; b++) {
      const start = b * blockSize;
      const end = Math.min(cols, start + blockSize);
      const { scale, zero } =
        bits === 8 ? { scale: absMax(w, n, start, end, stride) / 127, zero: 128 } : bestRange4(w, n, start, end, stride);
      scales[n * perRow + b] = scale;
      if (zeroPoints) zeroPoints[n * zpBytesPerRow + (b >> 1)] |= b & 1 ? zero << 4 : zero;
      const inv = scale === 0 ? 0 : 1 / scale;
      const at = (n * perRow + b) * bytesPerBlock;
      for (let k = start; k < start + blockSize; k++) {
        const v = k < end ? w[n * stride.row + k * stride.col] : 0;
        const q = Math.min(max, Math.max(0, Math.round(v * inv) + zero));
        if (bits === 8) data[at + k - start] = q;
        else data[at + ((k - start) >> 1)] |= (k - start) & 1 ? q << 4 : q;
      }
    }
  }
  return { bits, blockSize, rows, cols, data, scales, zeroPoints };
}

type Stride = { row: number; col: number };

function absMax(w: Float32Array, n: number, start: number, end: number, stride: Stride): number {
  let m = 0;
  for (let k = start; k < end; k++) m = Math.max(m, Math.abs(w[n * stride.row + k * stride.col]));
  return m;
}

/**
 * Scale and zero point of one 4-bit block: w ≈ (q − zero)·scale, q ∈ [0, 15].
 * The plain min/max range wastes levels on outliers, so a few narrower ranges
 * are tried and the one with the least squared error kept (the search of
 * llama.cpp's k-quants, reduced to a handful of candidates).
 */
function bestRange4(w: Float32Array, n: number, start: number, end: number, stride: Stride): { scale: number; zero: number } {
  let lo = 0;
  let hi = 0;
  for (let k = start; k < end; k++) {
    const v = w[n * stride.row + k * stride.col];
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  if (hi === lo) return { scale: 0, zero: 8 };
  let best = { scale: (hi - lo) / 15, zero: 0 };
  let bestError = Infinity;
  for (const shrink of [1, 0.95, 0.9, 0.85, 0.8]) {
    const scale = ((hi - lo) * shrink) / 15;
    // Zero stays exactly representable (padding and true zeros cost nothing).
    const zero = Math.min(15, Math.max(0, Math.round(-lo / scale)));
    let error = 0;
    for (let k = start; k < end; k++) {
      const v = w[n * stride.row + k * stride.col];
      const e = v - (Math.min(15, Math.max(0, Math.round(v / scale) + zero)) - zero) * scale;
      error += e * e;
    }
    if (error < bestError) {
      bestError = error;
      best = { scale, zero };
    }
  }
  return best;
}

/** Rows [start, start + count) of a [rows, cols] matrix as float32, row-major. */
export type RowSource = (start: number, count: number) => Float32Array;

/** A whole float32 matrix as a RowSource. */
export const rowsOf =
  (w: Float32Array, cols: number): RowSource =>
  (start, count) =>
    w.subarray(start * cols, (start + count) * cols);

/** quantizeMatrix over `blockSize` rows at a time: only those rows are ever in float32. */
export function quantizeRows(read: RowSource, rows: number, cols: number, bits: 4 | 8, blockSize = DEFAULT_BLOCK_SIZE): QuantizedMatrix {
  const out = emptyMatrix(rows, cols, bits, blockSize);
  const perRow = blocksPerRow(cols, blockSize);
  const dataRow = (perRow * blockSize * bits) / 8;
  for (let start = 0; start < rows; start += blockSize) {
    const count = Math.min(blockSize, rows - start);
    const q = quantizeMatrix(read(start, count), count, cols, bits, blockSize);
    out.data.set(q.data, start * dataRow);
    out.scales.set(q.scales, start * perRow);
    if (q.zeroPoints) out.zeroPoints!.set(q.zeroPoints, start * Math.ceil(perRow / 2));
  }
  return out;
}

/**
 * Wᵀ [cols, rows] quantised in blocks along its own rows: the weight of dX = dY·W in a backward pass.
 * Block b of every row of Wᵀ comes from rows [b·blockSize, (b+1)·blockSize) of W, read one such group at a time.
 */
export function quantizeRowsTransposed(
  read: RowSource,
  rows: number,
  cols: number,
  bits: 4 | 8,
  blockSize = DEFAULT_BLOCK_SIZE,
): QuantizedMatrix {
  const out = emptyMatrix(cols, rows, bits, blockSize);
  const perRow = blocksPerRow(rows, blockSize);
  const bytesPerBlock = (blockSize * bits) / 8;
  const zpBytesPerRow = Math.ceil(perRow / 2);
  for (let b = 0; b < perRow; b++) {
    const count = Math.min(blockSize, rows - b * blockSize);
    // The group's transpose [cols, count]: one block per row.
    const q = quantizeMatrix(read(b * blockSize, count), cols, count, bits, blockSize, { row: 1, col: cols });
    for (let n = 0; n < cols; n++) {
      out.data.set(q.data.subarray(n * bytesPerBlock, (n + 1) * bytesPerBlock), (n * perRow + b) * bytesPerBlock);
      out.scales[n * perRow + b] = q.scales[n];
      if (q.zeroPoints) out.zeroPoints![n * zpBytesPerRow + (b >> 1)] |= b & 1 ? q.zeroPoints[n] << 4 : q.zeroPoints[n];
    }
  }
  return out;
}

/** Wᵀ [cols, rows] quantised in blocks along its own rows, from the whole float32 W. */
export function quantizeTransposed(
  w: Float32Array,
  rows: number,
  cols: number,
  bits: 4 | 8,
  blockSize = DEFAULT_BLOCK_SIZE,
): QuantizedMatrix {
  return quantizeRowsTransposed(rowsOf(w, cols), rows, cols, bits, blockSize);
}

function emptyMatrix(rows: number, cols: number, bits: 4 | 8, blockSize: number): QuantizedMatrix {
  const sizes = quantizedSizes(rows, cols, bits, blockSize);
  return {
    bits,
    blockSize,
    rows,
    cols,
    data: new Uint8Array(sizes.data),
    scales: new Float32Array(sizes.scales / 4),
    zeroPoints: sizes.zeroPoints ? new Uint8Array(sizes.zeroPoints) : undefined,
  };
}

/** The float matrix [rows, cols] a quantized one stands for (tests, and any consumer without MatMulNBits). */
export function dequantize(q: QuantizedMatrix): Float32Array {
  const perRow = blocksPerRow(q.cols, q.blockSize);
  const bytesPerBlock = (q.blockSize * q.bits) / 8;
  const zpBytesPerRow = Math.ceil((perRow * q.bits) / 8);
  const nibble = (bytes: Uint8Array, i: number) => (i & 1 ? bytes[i >> 1] >> 4 : bytes[i >> 1] & 15);
  const out = new Float32Array(q.rows * q.cols);
  for (let n = 0; n < q.rows; n++) {
    for (let k = 0; k < q.cols; k++) {
      const b = Math.floor(k / q.blockSize);
      const at = (n * perRow + b) * bytesPerBlock;
      const i = k - b * q.blockSize;
      const value = q.bits === 8 ? q.data[at + i] : nibble(q.data.subarray(at), i);
      let zero = 1 << (q.bits - 1);
      if (q.zeroPoints) zero = q.bits === 8 ? q.zeroPoints[n * zpBytesPerRow + b] : nibble(q.zeroPoints.subarray(n * zpBytesPerRow), b);
      // The product, then the sum, each rounded to float32 (as ggml decodes offset blocks).
      const scaled = Math.fround((value - zero) * q.scales[n * perRow + b]);
      out[n * q.cols + k] = q.mins ? scaled + q.mins[b * q.rows + n] : scaled;
    }
  }
  return out;
}

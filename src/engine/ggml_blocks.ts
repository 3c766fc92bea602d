// GGUF's block-quantized tensors as MatMulNBits blocks, straight from the file's
// bytes: which llama.cpp types map exactly onto onnxruntime's layout, and the
// mapping itself. Types that do not map are requantized from float32 by the
// weights cache (src/engine/weights.ts).
//
// MatMulNBits computes with W[n, k] = (q − zero)·scale per block (32 here, 16 for Q6_K), where the
// fast CPU kernels need integer zero points (uint8); float zero points are accepted
// for 4 bits only, and then onnxruntime (1.30) dequantizes the whole matrix on every
// call (measured ~700× slower at one token), so they are not used. A block's offset
// (Q4_1's m, a K-quant sub-block's −dmin·m) is instead added by a second, small
// product: x's per-block sums times a [blocks, rows] matrix of offsets (`mins`,
// kernels/ops.ts matMulNBits). Hence, value for value as ggml decodes them:
//   Q8_0  y = d·q, q ∈ [−128, 127]            → 8 bits, q + 128 (zero 128, implicit)
//   Q4_0  y = d·(q − 8), q ∈ [0, 15]           → 4 bits (nibbles reordered), zero 8; or 8 bits, q + 120
//   Q4_1  y = d·q + m                           → as Q4_0, offset m + 8d
//   Q4_K  y = (d·sc)·q − dmin·mn per 32         → as Q4_1 with scale d·sc, offset 8·d·sc − dmin·mn
//   Q5_K  the same with 5-bit q                 → 8 bits, q + 112, offset 16·d·sc − dmin·mn
//   Q6_K  y = (d·sc)·q per 16, q ∈ [−32, 31]  → 8 bits, blocks of 16, q + 128 (zero 128, implicit)
// Every mapped block is symmetric (implicit zero point); only the offset's float sum is rounded anew.
// Q6_K's sub-blocks of 16 are MatMulNBits blocks of 16 (any power of two ≥ 16 is a block size, and 8 bits
// at 16 run on onnxruntime 1.30's CPU kernels), exact with no offsets: 10 bits per weight and 1.2–1.4× the
// time of requantized 8-bit blocks of 32 on one token (`npm run -s bench:nbits`), for no second rounding.

import { forEachBlock32, forEachQ6Superblock, ggmlByteLength, type Block32Type } from '../model/ggml';
import type { GgmlType, QuantType } from '../model/types';
import type { QuantizedMatrix } from './quantize';

/** The block of Q8_0/Q4_0/Q4_1 and the sub-block of Q4_K/Q5_K: MatMulNBits' block size when mapped. */
export const GGML_BLOCK = 32;
/** Q6_K's sub-block: its MatMulNBits block size when mapped. */
const Q6_K_BLOCK = 16;

const QUANT_TYPES: readonly GgmlType[] = ['Q8_0', 'Q4_0', 'Q4_1', 'Q4_K', 'Q5_K', 'Q6_K'];

export function isQuantType(type: GgmlType): type is QuantType {
  return QUANT_TYPES.includes(type);
}

/**
 * The MatMulNBits width a block type is served at when a model is used as stored: its own width
 * where its blocks map (4 bits for Q4_0/Q4_1/Q4_K, 8 for Q8_0, the 5-bit Q5_K and the 6-bit Q6_K).
 * Float types: none.
 */
export function storedBits(type: GgmlType): 4 | 8 | undefined {
  if (type === 'Q4_0' || type === 'Q4_1' || type === 'Q4_K') return 4;
  if (type === 'Q8_0' || type === 'Q5_K' || type === 'Q6_K') return 8;
  return undefined;
}

/** Whether blocks of `type` are exactly MatMulNBits blocks of `bits` (integer zero point, per-block offsets). */
export function mapsExactly(type: GgmlType, bits: 4 | 8): boolean {
  if (type === 'Q4_0' || type === 'Q4_1' || type === 'Q4_K') return true;
  return bits === 8 && (type === 'Q8_0' || type === 'Q5_K' || type === 'Q6_K');
}

/** MatMulNBits' block size for mapped blocks of `type`. */
export function mappedBlockSize(type: GgmlType): number {
  return type === 'Q6_K' ? Q6_K_BLOCK : GGML_BLOCK;
}

/** Whether mapped blocks of `type` carry per-block offsets (`mins`). */
export function hasOffsets(type: GgmlType): boolean {
  return type === 'Q4_1' || type === 'Q4_K' || type === 'Q5_K';
}

/**
 * The matrix [rows, cols] stored as `type` blocks in `bytes`, as MatMulNBits blocks of `bits`,
 * value for value (see mapsExactly): the same integers and scales, and the blocks' offsets as `mins`.
 */
export function mapBlocks(bytes: Uint8Array, type: GgmlType, rows: number, cols: number, bits: 4 | 8): QuantizedMatrix {
  if (!mapsExactly(type, bits) || cols % GGML_BLOCK !== 0) throw new Error(`${type} blocks do not map onto ${bits}-bit MatMulNBits blocks`);
  const expected = ggmlByteLength(type, rows * cols);
  if (bytes.byteLength !== expected) throw new Error(`${type}: expected ${expected} bytes for [${rows}, ${cols}], got ${bytes.byteLength}`);
  if (type === 'Q6_K') return mapQ6K(bytes, rows, cols);
  const perRow = cols / GGML_BLOCK;
  const data = new Uint8Array((rows * cols * bits) / 8);
  const scales = new Float32Array(rows * perRow);
  const mins = hasOffsets(type) ? new Float32Array(rows * perRow) : undefined;
  // The offset types' q ∈ [0, 2^b) are centred, d·q + offset = d·(q − c) + (offset + c·d), so that the
  // blocks are symmetric like Q4_0's: the rounding of MatMulNBits' int8 activations (accuracy_level 4)
  // then multiplies q − c, not q (stories260K as Q4_1: +0.19 % NLL over its decoded blocks with
  // zero points of 0, +0.08 % centred, on 64 validation texts).
  const centre = type === 'Q5_K' ? 16 : mins ? 8 : 0;
  // Against MatMulNBits' implicit zero points: 128 at 8 bits, 8 at 4.
  const shift = bits === 8 ? 128 : 8;
  forEachBlock32(bytes, type as Block32Type, (b, d, offset, q) => {
    scales[b] = d;
    // mins is [blocks per row, rows]: block b is block b % perRow of row ⌊b / perRow⌋.
    if (mins) mins[(b % perRow) * rows + Math.floor(b / perRow)] = offset! + centre * d;
    const at = shift - centre;
    if (bits === 8) for (let j = 0; j < 32; j++) data[b * 32 + j] = q[j] + at;
    // MatMulNBits packs values 2i and 2i + 1 into byte i (low nibble first).
    else for (let i = 0; i < 16; i++) data[b * 16 + i] = (q[2 * i] + at) | ((q[2 * i + 1] + at) << 4);
  });
  return { bits, blockSize: GGML_BLOCK, rows, cols, data, scales, mins };
}

/** Q6_K's sub-blocks of 16 as 8-bit blocks of 16: the scale d·sc, the integers q + 128 (implicit zero 128). */
function mapQ6K(bytes: Uint8Array, rows: number, cols: number): QuantizedMatrix {
  const data = new Uint8Array(rows * cols);
  const scales = new Float32Array((rows * cols) / Q6_K_BLOCK);
  // Rows are whole super-blocks (cols is a multiple of 256 in any valid file), so values run in row order.
  forEachQ6Superblock(bytes, (b, superScales, q) => {
    scales.set(superScales, b * 16);
    for (let i = 0; i < 256; i++) data[b * 256 + i] = q[i] + 128;
  });
  return { bits: 8, blockSize: Q6_K_BLOCK, rows, cols, data, scales };
}

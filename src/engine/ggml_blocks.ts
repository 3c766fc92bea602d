// GGUF's block-quantized tensors as MatMulNBits blocks, straight from the file's
// bytes: which llama.cpp types map exactly onto onnxruntime's layout, and the
// mapping itself. Types that do not map are requantized from float32 by the
// weights cache (src/engine/weights.ts).
//
// MatMulNBits computes with W[n, k] = (q − zero)·scale per block of 32, where the
// fast CPU kernels need integer zero points (uint8); float zero points are accepted
// for 4 bits only, and then onnxruntime (1.30) dequantizes the whole matrix on every
// call (measured ~700× slower at one token), so they are not used. Hence:
//   Q8_0  y = d·q, q ∈ [−128, 127]           → 8 bits, q + 128, zero 128 (implicit): exact
//   Q4_0  y = d·(q − 8), q ∈ [0, 15]          → 4 bits (nibbles reordered), zero 8; or 8 bits, q + 120: exact
//   Q4_1  y = d·q + m                          → the zero point would be −m/d, not an integer: requantized (8 bits)
//   Q4_K  y = (d·sc)·q − dmin·mn per 32       → the zero point would be dmin·mn/(d·sc), not an integer: requantized (8 bits)
//   Q5_K  same form with 5-bit q               → requantized (8 bits)
//   Q6_K  16-value sub-blocks with own scales  → two scales per 32-block: requantized (8 bits)

import type { GgmlType, QuantType } from '../model/types';
import { f16ToF32 } from '../model/weights';
import type { QuantizedMatrix } from './quantize';

/** The block of Q8_0/Q4_0/Q4_1 and the sub-block of Q4_K/Q5_K: MatMulNBits' block size when mapped. */
export const GGML_BLOCK = 32;

const QUANT_TYPES: readonly GgmlType[] = ['Q8_0', 'Q4_0', 'Q4_1', 'Q4_K', 'Q5_K', 'Q6_K'];

export function isQuantType(type: GgmlType): type is QuantType {
  return QUANT_TYPES.includes(type);
}

/**
 * The MatMulNBits width a block type is served at when a model is used as stored: Q4_0's own
 * 4 bits; 8 for every type that is requantized, so that the file's quality is kept. Requantizing
 * 4-bit blocks to another 4-bit grid adds a second rounding error: on stories260K, Q4_1 served at
 * 4 bits costs +5.1 % NLL over its decoded blocks, at 8 bits +0.15 % (test/engine/gguf_blocks.test.ts).
 * Float types: none.
 */
export function storedBits(type: GgmlType): 4 | 8 | undefined {
  if (type === 'Q4_0') return 4;
  if (type === 'Q8_0' || type === 'Q4_1' || type === 'Q4_K' || type === 'Q5_K' || type === 'Q6_K') return 8;
  return undefined;
}

/** Whether blocks of `type` are exactly MatMulNBits blocks of `bits` (block 32, integer zero point). */
export function mapsExactly(type: GgmlType, bits: 4 | 8): boolean {
  return type === 'Q4_0' || (type === 'Q8_0' && bits === 8);
}

/**
 * The matrix [rows, cols] stored as `type` blocks in `bytes`, as MatMulNBits blocks of `bits`,
 * value for value (see mapsExactly). Symmetric: the zero points are MatMulNBits' implicit 2^(bits−1).
 */
export function mapBlocks(bytes: Uint8Array, type: GgmlType, rows: number, cols: number, bits: 4 | 8): QuantizedMatrix {
  if (!mapsExactly(type, bits) || cols % GGML_BLOCK !== 0) throw new Error(`${type} blocks do not map onto ${bits}-bit MatMulNBits blocks`);
  const blocks = (rows * cols) / GGML_BLOCK;
  const source = type === 'Q8_0' ? 34 : 18;
  if (bytes.byteLength !== blocks * source)
    throw new Error(`${type}: expected ${blocks * source} bytes for [${rows}, ${cols}], got ${bytes.byteLength}`);
  const data = new Uint8Array((blocks * GGML_BLOCK * bits) / 8);
  const scales = new Float32Array(blocks);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let b = 0; b < blocks; b++) {
    const at = b * source;
    scales[b] = f16ToF32(view.getUint16(at, true));
    const qs = at + 2;
    if (type === 'Q8_0') {
      // int8 two's complement + 128 = the byte with its top bit flipped.
      for (let j = 0; j < 32; j++) data[b * 32 + j] = bytes[qs + j] ^ 0x80;
    } else if (bits === 8) {
      // Q4_0 value j: low nibble of byte j (j < 16), high nibble of byte j − 16; (q − 8) + 128.
      for (let j = 0; j < 16; j++) {
        data[b * 32 + j] = (bytes[qs + j] & 15) + 120;
        data[b * 32 + 16 + j] = (bytes[qs + j] >> 4) + 120;
      }
    } else {
      // MatMulNBits packs values 2i and 2i + 1 into byte i (low nibble first).
      const nibble = (j: number) => (j < 16 ? bytes[qs + j] & 15 : bytes[qs + j - 16] >> 4);
      for (let i = 0; i < 16; i++) data[b * 16 + i] = nibble(2 * i) | (nibble(2 * i + 1) << 4);
    }
  }
  return { bits, blockSize: GGML_BLOCK, rows, cols, data, scales };
}

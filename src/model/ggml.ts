// llama.cpp's tensor types as stored in GGUF files: their block sizes and the
// decoding of each block to float32, written to match ggml's reference
// dequantize_row_* (ggml-quants.c) operation for operation in float32.

import type { GgmlType } from './types';
import { f16ToF32, toFloat32 } from './weights';

/** Values per block and bytes per block of each type. */
export const GGML_BLOCKS: Record<GgmlType, { values: number; bytes: number }> = {
  F32: { values: 1, bytes: 4 },
  F16: { values: 1, bytes: 2 },
  BF16: { values: 1, bytes: 2 },
  Q8_0: { values: 32, bytes: 2 + 32 },
  Q4_0: { values: 32, bytes: 2 + 16 },
  Q4_1: { values: 32, bytes: 2 + 2 + 16 },
  Q4_K: { values: 256, bytes: 2 + 2 + 12 + 128 },
  Q5_K: { values: 256, bytes: 2 + 2 + 12 + 32 + 128 },
  Q6_K: { values: 256, bytes: 128 + 64 + 16 + 2 },
};

/** ggml's type codes (ggml.h enum ggml_type) of the types Aligner reads. */
export const GGML_TYPE_CODES: Record<number, GgmlType> = {
  0: 'F32',
  1: 'F16',
  2: 'Q4_0',
  3: 'Q4_1',
  8: 'Q8_0',
  12: 'Q4_K',
  13: 'Q5_K',
  14: 'Q6_K',
  30: 'BF16',
};

/** Bytes of `count` values of `type`; count must be a whole number of blocks. */
export function ggmlByteLength(type: GgmlType, count: number): number {
  const b = GGML_BLOCKS[type];
  return (count / b.values) * b.bytes;
}

const f32 = Math.fround;

/** Decodes `bytes` (whole blocks of `type`) to float32. */
export function dequantize(bytes: Uint8Array, type: GgmlType): Float32Array {
  if (type === 'F32' || type === 'F16' || type === 'BF16') return toFloat32(bytes, type);
  const { values, bytes: blockBytes } = GGML_BLOCKS[type];
  const blocks = bytes.byteLength / blockBytes;
  const out = new Float32Array(blocks * values);
  if (type !== 'Q6_K') {
    block32Decoder(type)(bytes, out);
    return out;
  }
  forEachQ6Superblock(bytes, (b, scales, q) => {
    for (let i = 0; i < 256; i++) out[b * 256 + i] = f32(scales[i >> 4] * q[i]);
  });
  return out;
}

const half = (view: DataView, at: number) => f16ToF32(view.getUint16(at, true));

/** The types whose values come in blocks of 32 with one scale (and, for some, one offset) each. */
export type Block32Type = 'Q8_0' | 'Q4_0' | 'Q4_1' | 'Q4_K' | 'Q5_K';

/**
 * Calls `visit` for each block of 32 values of `bytes` (whole blocks of `type`), in order, with the
 * block's integers q and how ggml decodes them: value j = d·q[j] (symmetric types: Q8_0, Q4_0 with
 * q − 8), or d·q[j] + offset (Q4_1: +m; Q4_K/Q5_K: −dmin·m of the sub-block, d its d·scale), each
 * product and sum rounded to float32 as ggml does. `q` is reused between calls.
 */
export function forEachBlock32(
  bytes: Uint8Array,
  type: Block32Type,
  visit: (block: number, d: number, offset: number | undefined, q: Int32Array) => void,
): void {
  const { values, bytes: size } = GGML_BLOCKS[type];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const q = new Int32Array(32);
  const blocks = bytes.byteLength / size;
  for (let b = 0; b < blocks; b++) {
    const at = b * size;
    const first = (b * values) / 32;
    if (type === 'Q8_0') {
      for (let j = 0; j < 32; j++) q[j] = view.getInt8(at + 2 + j);
      visit(first, half(view, at), undefined, q);
    } else if (type === 'Q4_0' || type === 'Q4_1') {
      // block_q4_0 { f16 d; u8 qs[16] }, block_q4_1 { f16 d; f16 m; u8 qs[16] }: low nibbles are values 0-15, high 16-31.
      const qs = at + (type === 'Q4_0' ? 2 : 4);
      const shift = type === 'Q4_0' ? 8 : 0;
      for (let j = 0; j < 16; j++) {
        q[j] = (bytes[qs + j] & 0x0f) - shift;
        q[j + 16] = (bytes[qs + j] >> 4) - shift;
      }
      visit(first, half(view, at), type === 'Q4_1' ? half(view, at + 2) : undefined, q);
    } else {
      kBlock(bytes, view, at, type === 'Q5_K', q, (j, d, offset) => visit(first + j, d, offset, q));
    }
  }
}

/**
 * block_q4_K { f16 d; f16 dmin; u8 scales[12]; u8 qs[128] } and block_q5_K (the same plus u8 qh[32]
 * before qs, a fifth bit per value): 8 sub-blocks of 32 with 6-bit scales sc and mins m,
 * value = (d·sc)·q − dmin·m. Sub-blocks 2i and 2i + 1 share 32 bytes of qs: low nibbles, then high.
 */
function kBlock(
  bytes: Uint8Array,
  view: DataView,
  at: number,
  fifthBit: boolean,
  q: Int32Array,
  visit: (sub: number, d: number, offset: number) => void,
): void {
  const d = half(view, at);
  const dmin = half(view, at + 2);
  const qh = at + 16;
  let qs = at + (fifthBit ? 48 : 16);
  for (let sub = 0; sub < 8; sub++) {
    const [sc, m] = scaleMin(bytes, at + 4, sub);
    const high = sub & 1;
    const bit = 1 << sub;
    for (let l = 0; l < 32; l++) {
      const low = high ? bytes[qs + l] >> 4 : bytes[qs + l] & 0x0f;
      q[l] = fifthBit && bytes[qh + l] & bit ? low + 16 : low;
    }
    visit(sub, f32(d * sc), -f32(dmin * m));
    if (high) qs += 32;
  }
}

/** Decodes the blocks of 32 of forEachBlock32 as ggml's dequantize_row_*. */
function block32Decoder(type: Block32Type) {
  return (bytes: Uint8Array, y: Float32Array) =>
    forEachBlock32(bytes, type, (block, d, offset, q) => {
      const out = block * 32;
      for (let j = 0; j < 32; j++) y[out + j] = offset === undefined ? f32(d * q[j]) : f32(f32(d * q[j]) + offset);
    });
}

/** get_scale_min_k4: the 6-bit scale and min of sub-block j from the 12 packed bytes at `s`. */
function scaleMin(q: Uint8Array, s: number, j: number): [number, number] {
  if (j < 4) return [q[s + j] & 63, q[s + j + 4] & 63];
  return [(q[s + j + 4] & 0x0f) | ((q[s + j - 4] >> 6) << 4), (q[s + j + 4] >> 4) | ((q[s + j] >> 6) << 4)];
}

/**
 * Calls `visit` for each super-block of Q6_K `bytes` (block_q6_K { u8 ql[128]; u8 qh[64]; i8 scales[16];
 * f16 d }), in order, with its 256 integers q − 32 ∈ [−32, 31] and the scales d·sc of its 16 sub-blocks
 * of 16 (each product rounded to float32 as ggml does): value i = scales[i >> 4]·q[i]. Both arrays are
 * reused between calls.
 */
export function forEachQ6Superblock(bytes: Uint8Array, visit: (superblock: number, scales: Float32Array, q: Int32Array) => void): void {
  const size = GGML_BLOCKS.Q6_K.bytes;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const scales = new Float32Array(16);
  const q = new Int32Array(256);
  for (let b = 0; b < bytes.byteLength / size; b++) {
    const at = b * size;
    const d = half(view, at + 208);
    for (let j = 0; j < 16; j++) scales[j] = f32(d * view.getInt8(at + 192 + j));
    // Each half of 128 values: low nibbles in ql (values l and l + 32 low, l + 64 and l + 96 high),
    // their two high bits in qh, four values per byte.
    for (let n = 0; n < 2; n++) {
      const ql = at + 64 * n;
      const qh = at + 128 + 32 * n;
      for (let l = 0; l < 32; l++) {
        const h = bytes[qh + l];
        const o = 128 * n + l;
        q[o] = ((bytes[ql + l] & 0x0f) | ((h & 3) << 4)) - 32;
        q[o + 32] = ((bytes[ql + l + 32] & 0x0f) | (((h >> 2) & 3) << 4)) - 32;
        q[o + 64] = ((bytes[ql + l] >> 4) | (((h >> 4) & 3) << 4)) - 32;
        q[o + 96] = ((bytes[ql + l + 32] >> 4) | (((h >> 6) & 3) << 4)) - 32;
      }
    }
    visit(b, scales, q);
  }
}

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
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decode = DECODERS[type];
  for (let b = 0; b < blocks; b++) decode(bytes, view, b * blockBytes, out, b * values);
  return out;
}

type Decoder = (q: Uint8Array, view: DataView, at: number, y: Float32Array, out: number) => void;

const half = (view: DataView, at: number) => f16ToF32(view.getUint16(at, true));

/** block_q8_0 { f16 d; int8 qs[32] }: y = d·q. */
function q8_0(q: Uint8Array, view: DataView, at: number, y: Float32Array, out: number): void {
  const d = half(view, at);
  for (let j = 0; j < 32; j++) y[out + j] = f32(view.getInt8(at + 2 + j) * d);
}

/** block_q4_0 { f16 d; u8 qs[16] }: low nibbles are values 0-15, high nibbles 16-31, offset by 8. */
function q4_0(q: Uint8Array, view: DataView, at: number, y: Float32Array, out: number): void {
  const d = half(view, at);
  for (let j = 0; j < 16; j++) {
    const b = q[at + 2 + j];
    y[out + j] = f32(((b & 0x0f) - 8) * d);
    y[out + j + 16] = f32(((b >> 4) - 8) * d);
  }
}

/** block_q4_1 { f16 d; f16 m; u8 qs[16] }: y = q·d + m. */
function q4_1(q: Uint8Array, view: DataView, at: number, y: Float32Array, out: number): void {
  const d = half(view, at);
  const m = half(view, at + 2);
  for (let j = 0; j < 16; j++) {
    const b = q[at + 4 + j];
    y[out + j] = f32(f32((b & 0x0f) * d) + m);
    y[out + j + 16] = f32(f32((b >> 4) * d) + m);
  }
}

/** get_scale_min_k4: the 6-bit scale and min of sub-block j from the 12 packed bytes at `s`. */
function scaleMin(q: Uint8Array, s: number, j: number): [number, number] {
  if (j < 4) return [q[s + j] & 63, q[s + j + 4] & 63];
  return [(q[s + j + 4] & 0x0f) | ((q[s + j - 4] >> 6) << 4), (q[s + j + 4] >> 4) | ((q[s + j] >> 6) << 4)];
}

/** block_q4_K { f16 d; f16 dmin; u8 scales[12]; u8 qs[128] }: 8 sub-blocks of 32, y = d·sc·q − dmin·m. */
function q4_K(q: Uint8Array, view: DataView, at: number, y: Float32Array, out: number): void {
  const d = half(view, at);
  const dmin = half(view, at + 2);
  const scales = at + 4;
  let qs = at + 16;
  for (let j = 0, is = 0; j < 256; j += 64, is += 2, qs += 32) {
    const [sc1, m1] = scaleMin(q, scales, is);
    const [sc2, m2] = scaleMin(q, scales, is + 1);
    const d1 = f32(d * sc1),
      min1 = f32(dmin * m1);
    const d2 = f32(d * sc2),
      min2 = f32(dmin * m2);
    for (let l = 0; l < 32; l++) y[out + j + l] = f32(f32(d1 * (q[qs + l] & 0x0f)) - min1);
    for (let l = 0; l < 32; l++) y[out + j + 32 + l] = f32(f32(d2 * (q[qs + l] >> 4)) - min2);
  }
}

/** block_q5_K { f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128] }: Q4_K plus a fifth bit from qh. */
function q5_K(q: Uint8Array, view: DataView, at: number, y: Float32Array, out: number): void {
  const d = half(view, at);
  const dmin = half(view, at + 2);
  const scales = at + 4;
  const qh = at + 16;
  let ql = at + 48;
  for (let j = 0, is = 0, u1 = 1, u2 = 2; j < 256; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
    const [sc1, m1] = scaleMin(q, scales, is);
    const [sc2, m2] = scaleMin(q, scales, is + 1);
    const d1 = f32(d * sc1),
      min1 = f32(dmin * m1);
    const d2 = f32(d * sc2),
      min2 = f32(dmin * m2);
    for (let l = 0; l < 32; l++) y[out + j + l] = f32(f32(d1 * ((q[ql + l] & 0x0f) + (q[qh + l] & u1 ? 16 : 0))) - min1);
    for (let l = 0; l < 32; l++) y[out + j + 32 + l] = f32(f32(d2 * ((q[ql + l] >> 4) + (q[qh + l] & u2 ? 16 : 0))) - min2);
  }
}

/** block_q6_K { u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d }: 16 sub-blocks of 16, y = d·sc·(q − 32). */
function q6_K(q: Uint8Array, view: DataView, at: number, y: Float32Array, out: number): void {
  const d = half(view, at + 208);
  let ql = at;
  let qh = at + 128;
  let sc = at + 192;
  for (let n = 0; n < 256; n += 128, ql += 64, qh += 32, sc += 8) {
    for (let l = 0; l < 32; l++) {
      const is = l >> 4;
      const h = q[qh + l];
      const q1 = ((q[ql + l] & 0x0f) | ((h & 3) << 4)) - 32;
      const q2 = ((q[ql + l + 32] & 0x0f) | (((h >> 2) & 3) << 4)) - 32;
      const q3 = ((q[ql + l] >> 4) | (((h >> 4) & 3) << 4)) - 32;
      const q4 = ((q[ql + l + 32] >> 4) | (((h >> 6) & 3) << 4)) - 32;
      y[out + n + l] = f32(f32(d * view.getInt8(sc + is)) * q1);
      y[out + n + l + 32] = f32(f32(d * view.getInt8(sc + is + 2)) * q2);
      y[out + n + l + 64] = f32(f32(d * view.getInt8(sc + is + 4)) * q3);
      y[out + n + l + 96] = f32(f32(d * view.getInt8(sc + is + 6)) * q4);
    }
  }
}

const DECODERS: Record<Exclude<GgmlType, 'F32' | 'F16' | 'BF16'>, Decoder> = {
  Q8_0: q8_0,
  Q4_0: q4_0,
  Q4_1: q4_1,
  Q4_K: q4_K,
  Q5_K: q5_K,
  Q6_K: q6_K,
};

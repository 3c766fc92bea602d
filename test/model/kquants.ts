// K-quant test data: Q4_K, Q5_K and Q6_K blocks built from chosen integer parameters
// (with their exact values), and a random llama model of width 256 made of them.

import { dequantize } from '../../src/model/ggml';
import { Rng } from '../../src/util/random';
import { f32, f32ToF16, storiesTokenizerMeta, str, u32, writeGguf, type GgufTensor, type Meta } from './gguf_writer';

const fr = Math.fround;
const half = (x: number) => {
  const b = new Uint8Array(2);
  new DataView(b.buffer).setUint16(0, f32ToF16(x), true);
  return b;
};

/** K-quant blocks built from chosen integer parameters with the packing of ggml's quantize_row_*_K_ref. */
export interface KBlock {
  bytes: Uint8Array;
  values: number[];
}

function packScales(sc: number[], m: number[]): Uint8Array {
  const s = new Uint8Array(12);
  for (let j = 0; j < 8; j++) {
    if (j < 4) {
      s[j] = sc[j];
      s[j + 4] = m[j];
    } else {
      s[j + 4] = (sc[j] & 0xf) | ((m[j] & 0xf) << 4);
      s[j - 4] |= (sc[j] >> 4) << 6;
      s[j] |= (m[j] >> 4) << 6;
    }
  }
  return s;
}

/**
 * The bytes of one Q4_K (bits 4) or Q5_K (bits 5) super-block: d and dmin as f16, per sub-block of 32
 * the 6-bit scale sc and min m, and the 256 integers q. Its values are (d·sc)·q − dmin·m.
 */
export function kQuantBytes(d: number, dmin: number, sc: number[], m: number[], q: number[], bits: 4 | 5): Uint8Array {
  const bytes = new Uint8Array(bits === 4 ? 144 : 176);
  bytes.set(half(d), 0);
  bytes.set(half(dmin), 2);
  bytes.set(packScales(sc, m), 4);
  const qs = bits === 4 ? 16 : 48;
  for (let i = 0; i < 256; i++) {
    const chunk = i >> 6;
    const hi = (i & 63) >= 32 ? 1 : 0;
    const l = i & 31;
    const sub = 2 * chunk + hi;
    bytes[qs + 32 * chunk + l] |= (q[i] & 0xf) << (4 * hi);
    if (bits === 5 && q[i] & 16) bytes[16 + l] |= 1 << sub;
  }
  return bytes;
}

function q4kBlock(rng: Rng, bits: 4 | 5): KBlock {
  const d = fr(0.01 + rng.next() * 0.1);
  const dmin = fr(rng.next() * 0.05);
  const dh = fr(new Float32Array(dequantize(half(d), 'F16'))[0]);
  const mh = fr(new Float32Array(dequantize(half(dmin), 'F16'))[0]);
  const sc = Array.from({ length: 8 }, () => rng.int(64));
  const m = Array.from({ length: 8 }, () => rng.int(64));
  const q = Array.from({ length: 256 }, () => rng.int(1 << bits));
  const values = q.map((qi, i) => fr(fr(fr(dh * sc[i >> 5]) * qi) - fr(mh * m[i >> 5])));
  return { bytes: kQuantBytes(d, dmin, sc, m, q, bits), values };
}

/**
 * The bytes of one Q6_K super-block: d as f16, the int8 scales sc of its 16 sub-blocks of 16, and the
 * 256 integers q ∈ [0, 63] (stored 6-bit; the value is (d·sc)·(q − 32)).
 */
export function q6KBytes(d: number, sc: number[], q: number[]): Uint8Array {
  const bytes = new Uint8Array(210);
  for (let i = 0; i < 256; i++) {
    const n = i >> 7;
    const quarter = (i & 127) >> 5;
    const l = i & 31;
    bytes[n * 64 + l + (quarter & 1 ? 32 : 0)] |= (q[i] & 0xf) << (quarter >= 2 ? 4 : 0);
    bytes[128 + n * 32 + l] |= (q[i] >> 4) << (2 * quarter);
  }
  sc.forEach((s, i) => (bytes[192 + i] = s & 0xff));
  bytes.set(half(d), 208);
  return bytes;
}

function q6kBlock(rng: Rng): KBlock {
  const d = fr(0.001 + rng.next() * 0.01);
  const dh = fr(new Float32Array(dequantize(half(d), 'F16'))[0]);
  const sc = Array.from({ length: 16 }, () => rng.int(256) - 128);
  const q = Array.from({ length: 256 }, () => rng.int(64));
  // ggml's dequantize_row_q6_K: in half n, value l + 32·quarter takes scales[8n + l/16 + 2·quarter].
  const values = q.map((qi, i) => {
    const [n, quarter, l] = [i >> 7, (i & 127) >> 5, i & 31];
    return fr(fr(dh * sc[n * 8 + (l >> 4) + 2 * quarter]) * (qi - 32));
  });
  return { bytes: q6KBytes(d, sc, q), values };
}

export const K_BLOCKS = { Q4_K: (r: Rng) => q4kBlock(r, 4), Q5_K: (r: Rng) => q4kBlock(r, 5), Q6_K: q6kBlock };

/** A random llama model of width 256 whose matrices are K-quant blocks, written as GGUF. */
export function kQuantModel(file: string): Map<string, number[]> {
  const rng = new Rng(11);
  const d = 256;
  const f = 512;
  const vocab = 512;
  const expected = new Map<string, number[]>();
  const tensors: GgufTensor[] = [];
  const codes = { Q4_K: 12, Q5_K: 13, Q6_K: 14 };
  const matrix = (name: string, rows: number, cols: number, type: keyof typeof K_BLOCKS) => {
    const blocks = Array.from({ length: (rows * cols) / 256 }, () => K_BLOCKS[type](rng));
    const data = new Uint8Array(blocks.reduce((a, b) => a + b.bytes.length, 0));
    blocks.reduce((at, b) => (data.set(b.bytes, at), at + b.bytes.length), 0);
    tensors.push({ name, type: codes[type], shape: [rows, cols], data });
    expected.set(
      name,
      blocks.flatMap((b) => b.values),
    );
  };
  const norm = (name: string) => {
    const data = Float32Array.from({ length: d }, () => 1 + 0.1 * rng.normal());
    tensors.push({ name, type: 0, shape: [d], data: new Uint8Array(data.buffer) });
  };
  matrix('token_embd.weight', vocab, d, 'Q6_K');
  norm('blk.0.attn_norm.weight');
  matrix('blk.0.attn_q.weight', d, d, 'Q4_K');
  matrix('blk.0.attn_k.weight', d / 2, d, 'Q5_K');
  matrix('blk.0.attn_v.weight', d / 2, d, 'Q6_K');
  matrix('blk.0.attn_output.weight', d, d, 'Q4_K');
  norm('blk.0.ffn_norm.weight');
  matrix('blk.0.ffn_gate.weight', f, d, 'Q4_K');
  matrix('blk.0.ffn_up.weight', f, d, 'Q5_K');
  matrix('blk.0.ffn_down.weight', d, f, 'Q6_K');
  norm('output_norm.weight');
  matrix('output.weight', vocab, d, 'Q6_K');
  const meta: Meta = {
    'general.architecture': str('llama'),
    'llama.context_length': u32(256),
    'llama.embedding_length': u32(d),
    'llama.block_count': u32(1),
    'llama.feed_forward_length': u32(f),
    'llama.attention.head_count': u32(4),
    'llama.attention.head_count_kv': u32(2),
    'llama.attention.layer_norm_rms_epsilon': f32(1e-5),
    ...storiesTokenizerMeta(),
  };
  writeGguf(file, meta, tensors);
  return expected;
}

// Writes GGUF files for tests: the header and metadata are serialized by
// @huggingface/gguf (serializeGgufMetadata); the tensor infos and data, which it
// has no writer for, are laid out here as llama.cpp's gguf.c writes them. Also
// ggml's reference quantizers for Q8_0 and Q4_0, and stories260K converted the
// way llama.cpp's convert_hf_to_gguf.py converts a Llama model.

import * as fs from 'fs';
import * as path from 'path';
import { GGUFValueType, serializeGgufMetadata } from '@huggingface/gguf';
import type { GGUFTypedMetadata, MetadataValue } from '@huggingface/gguf';
import { loadModel } from '../../src/model/load';
import type { BaseModel } from '../../src/model/types';
import { STORIES, LLAMA2C_TOKENIZER } from './paths';

export type Meta = Record<string, { value: MetadataValue; type: GGUFValueType; subType?: GGUFValueType }>;

export const str = (value: string) => ({ value, type: GGUFValueType.STRING });
export const u32 = (value: number) => ({ value, type: GGUFValueType.UINT32 });
export const f32 = (value: number) => ({ value, type: GGUFValueType.FLOAT32 });
export const bool = (value: boolean) => ({ value, type: GGUFValueType.BOOL });
export const strings = (value: string[]) => ({ value, type: GGUFValueType.ARRAY, subType: GGUFValueType.STRING });
export const floats = (value: number[]) => ({ value, type: GGUFValueType.ARRAY, subType: GGUFValueType.FLOAT32 });
export const ints = (value: number[]) => ({ value, type: GGUFValueType.ARRAY, subType: GGUFValueType.INT32 });

export interface GgufTensor {
  name: string;
  /** ggml type code (0 F32, 1 F16, 2 Q4_0, 3 Q4_1, 8 Q8_0, 12 Q4_K, 13 Q5_K, 14 Q6_K, 30 BF16). */
  type: number;
  /** Row-major shape, outermost first (written innermost first, as GGUF stores it). */
  shape: number[];
  data: Uint8Array;
}

const ALIGNMENT = 32;

export function writeGguf(file: string, metadata: Meta, tensors: GgufTensor[], version: 2 | 3 = 3): void {
  const typed = {
    version: { value: version, type: GGUFValueType.UINT32 },
    tensor_count: { value: BigInt(tensors.length), type: GGUFValueType.UINT64 },
    kv_count: { value: BigInt(Object.keys(metadata).length), type: GGUFValueType.UINT64 },
    ...metadata,
  } as GGUFTypedMetadata;
  // Alignment 1: the library pads the metadata for tensor data, but the tensor infos come first.
  const head = serializeGgufMetadata(typed, { alignment: 1 });
  const infos: Buffer[] = [];
  let offset = 0;
  for (const t of tensors) {
    const name = Buffer.from(t.name, 'utf8');
    const info = Buffer.alloc(8 + name.length + 4 + 8 * t.shape.length + 4 + 8);
    let at = info.writeBigUInt64LE(BigInt(name.length), 0);
    at += name.copy(info, at);
    at = info.writeUInt32LE(t.shape.length, at);
    for (const n of [...t.shape].reverse()) at = info.writeBigUInt64LE(BigInt(n), at);
    at = info.writeUInt32LE(t.type, at);
    info.writeBigUInt64LE(BigInt(offset), at);
    infos.push(info);
    offset = pad(offset + t.data.byteLength);
  }
  const headerLength = head.byteLength + infos.reduce((a, b) => a + b.length, 0);
  const parts: Uint8Array[] = [head, ...infos, new Uint8Array(pad(headerLength) - headerLength)];
  for (const t of tensors) parts.push(t.data, new Uint8Array(pad(t.data.byteLength) - t.data.byteLength));
  // Part by part: the bench writes files of gigabytes, which one concatenated buffer would double.
  const fd = fs.openSync(file, 'w');
  try {
    for (const p of parts) fs.writeSync(fd, p);
  } finally {
    fs.closeSync(fd);
  }
}

const pad = (n: number) => Math.ceil(n / ALIGNMENT) * ALIGNMENT;

/** float32 → IEEE half, round to nearest even (ggml's GGML_FP32_TO_FP16 on CPUs without F16C does the same). */
export function f32ToF16(value: number): number {
  const f = new Float32Array([value]);
  const x = new Uint32Array(f.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++;
  return sign | h;
}

export function f16Bytes(x: Float32Array): Uint8Array {
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = f32ToF16(x[i]);
  return new Uint8Array(out.buffer);
}

export const f32Bytes = (x: Float32Array) => new Uint8Array(x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength));

/** ggml's quantize_row_q8_0_ref: d = max|x| / 127, q = round(x / d). */
export function quantizeQ8_0(x: Float32Array): Uint8Array {
  const out = new Uint8Array((x.length / 32) * 34);
  const view = new DataView(out.buffer);
  for (let b = 0; b < x.length / 32; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]));
    const d = Math.fround(amax / 127);
    const id = d ? Math.fround(1 / d) : 0;
    view.setUint16(b * 34, f32ToF16(d), true);
    for (let j = 0; j < 32; j++) view.setInt8(b * 34 + 2 + j, roundAway(Math.fround(x[b * 32 + j] * id)));
  }
  return out;
}

/** ggml's quantize_row_q4_0_ref: d = (the value of largest magnitude) / −8, q = min(15, trunc(x / d + 8.5)). */
export function quantizeQ4_0(x: Float32Array): Uint8Array {
  const out = new Uint8Array((x.length / 32) * 18);
  const view = new DataView(out.buffer);
  for (let b = 0; b < x.length / 32; b++) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      const v = x[b * 32 + j];
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = Math.fround(max / -8);
    const id = d ? Math.fround(1 / d) : 0;
    view.setUint16(b * 18, f32ToF16(d), true);
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(15, Math.trunc(Math.fround(Math.fround(x[b * 32 + j] * id) + 8.5)));
      const q1 = Math.min(15, Math.trunc(Math.fround(Math.fround(x[b * 32 + 16 + j] * id) + 8.5)));
      out[b * 18 + 2 + j] = q0 | (q1 << 4);
    }
  }
  return out;
}

/** ggml's quantize_row_q4_1_ref: d = (max − min) / 15, m = min, q = min(15, trunc((x − min) / d + 0.5)). */
export function quantizeQ4_1(x: Float32Array): Uint8Array {
  const out = new Uint8Array((x.length / 32) * 20);
  const view = new DataView(out.buffer);
  for (let b = 0; b < x.length / 32; b++) {
    const block = x.subarray(b * 32, b * 32 + 32);
    const min = Math.min(...block);
    const d = Math.fround((Math.max(...block) - min) / 15);
    const id = d ? Math.fround(1 / d) : 0;
    view.setUint16(b * 20, f32ToF16(d), true);
    view.setUint16(b * 20 + 2, f32ToF16(min), true);
    const q = (v: number) => Math.min(15, Math.trunc(Math.fround(Math.fround((v - min) * id) + 0.5)));
    for (let j = 0; j < 16; j++) out[b * 20 + 4 + j] = q(block[j]) | (q(block[16 + j]) << 4);
  }
  return out;
}

/** C's roundf: halves away from zero. */
const roundAway = (v: number) => Math.sign(v) * Math.round(Math.abs(v));

export type StoriesType = 'F32' | 'F16' | 'Q8_0' | 'Q4_0' | 'Q4_1';

const TYPE_CODES: Record<StoriesType, number> = { F32: 0, F16: 1, Q8_0: 8, Q4_0: 2, Q4_1: 3 };

/** A chat template for the test files (stories260K has none of its own). */
export const TEST_CHAT_TEMPLATE =
  "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]{% else %}{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}";

/** stories260K (or a model of its vocabulary) as a GGUF file; see writeModelGguf. */
export async function writeStoriesGguf(file: string, type: StoriesType, opts: GgufOptions = {}): Promise<void> {
  writeModelGguf(file, await loadModel(STORIES), type, opts);
}

export interface GgufOptions {
  version?: 2 | 3;
  /** general.architecture: llama (default), mistral or qwen2. */
  arch?: string;
  extraMeta?: Meta;
  extraTensors?: GgufTensor[];
  /** Leave tokenizer.chat_template out, as stories260K's own folder has none. */
  noChatTemplate?: boolean;
}

/**
 * A model as convert_hf_to_gguf.py (then llama-quantize) would write it: q/k rows permuted to
 * llama.cpp's interleaved rotary order for llama/mistral, norms and biases in F32, 2-D tensors in
 * `type` (F16 where rows are not whole blocks, like llama-quantize's fallback; the head Q8_0 in a Q4_0 file), and stories260K's
 * SentencePiece vocabulary with tok512.bin's scores.
 */
export function writeModelGguf(file: string, hf: BaseModel, type: StoriesType, opts: GgufOptions = {}): void {
  const c = hf.config;
  const arch = opts.arch ?? 'llama';
  const permute = arch !== 'qwen2';
  const tensors: GgufTensor[] = [];
  // llama-quantize gives the output matrix (the embedding when tied) Q6_K, which falls back to Q8_0
  // for rows that are not whole 256-superblocks (stories260K's 64).
  const head = c.tieWordEmbeddings ? 'token_embd.weight' : 'output.weight';
  const add = (name: string, hfName: string, heads = 0) => {
    if (!hf.weights.tensors.has(hfName)) return;
    let data = hf.weights.f32(hfName);
    const shape = hf.weights.tensors.get(hfName)!.shape;
    if (heads && permute) data = permuteRows(data, heads, c.headDim);
    let code = shape.length === 1 ? 0 : name === head && type.startsWith('Q4') ? TYPE_CODES.Q8_0 : TYPE_CODES[type];
    if (code > 1 && shape[shape.length - 1] % 32 !== 0) code = 1;
    const quantizers: Record<number, (x: Float32Array) => Uint8Array> = {
      0: f32Bytes,
      1: f16Bytes,
      8: quantizeQ8_0,
      2: quantizeQ4_0,
      3: quantizeQ4_1,
    };
    const bytes = quantizers[code](data);
    tensors.push({ name, type: code, shape, data: bytes });
  };
  add('token_embd.weight', 'model.embed_tokens.weight');
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}.`;
    add(`blk.${i}.attn_norm.weight`, `${p}input_layernorm.weight`);
    add(`blk.${i}.attn_q.weight`, `${p}self_attn.q_proj.weight`, c.numHeads);
    add(`blk.${i}.attn_k.weight`, `${p}self_attn.k_proj.weight`, c.numKvHeads);
    add(`blk.${i}.attn_v.weight`, `${p}self_attn.v_proj.weight`);
    add(`blk.${i}.attn_q.bias`, `${p}self_attn.q_proj.bias`, c.numHeads);
    add(`blk.${i}.attn_k.bias`, `${p}self_attn.k_proj.bias`, c.numKvHeads);
    add(`blk.${i}.attn_v.bias`, `${p}self_attn.v_proj.bias`);
    add(`blk.${i}.attn_output.weight`, `${p}self_attn.o_proj.weight`);
    add(`blk.${i}.ffn_norm.weight`, `${p}post_attention_layernorm.weight`);
    add(`blk.${i}.ffn_gate.weight`, `${p}mlp.gate_proj.weight`);
    add(`blk.${i}.ffn_up.weight`, `${p}mlp.up_proj.weight`);
    add(`blk.${i}.ffn_down.weight`, `${p}mlp.down_proj.weight`);
  }
  add('output_norm.weight', 'model.norm.weight');
  add('output.weight', 'lm_head.weight');
  tensors.push(...(opts.extraTensors ?? []));
  const meta: Meta = {
    'general.architecture': str(arch),
    'general.name': str(hf.name),
    'general.file_type': u32({ F32: 0, F16: 1, Q8_0: 7, Q4_0: 2, Q4_1: 3 }[type]),
    [`${arch}.context_length`]: u32(c.maxPositions),
    [`${arch}.embedding_length`]: u32(c.hiddenSize),
    [`${arch}.block_count`]: u32(c.numLayers),
    [`${arch}.feed_forward_length`]: u32(c.intermediateSize),
    [`${arch}.attention.head_count`]: u32(c.numHeads),
    [`${arch}.attention.head_count_kv`]: u32(c.numKvHeads),
    [`${arch}.rope.dimension_count`]: u32(c.headDim),
    [`${arch}.rope.freq_base`]: f32(c.ropeTheta),
    [`${arch}.attention.layer_norm_rms_epsilon`]: f32(c.rmsNormEps),
    ...storiesTokenizerMeta(),
    ...opts.extraMeta,
  };
  if (opts.noChatTemplate) delete meta['tokenizer.chat_template'];
  writeGguf(file, meta, tensors, opts.version ?? 3);
}

/** stories260K's tokenizer as convert_hf_to_gguf.py writes a SentencePiece one, with a test chat template. */
export function storiesTokenizerMeta(): Meta {
  const vocab = JSON.parse(fs.readFileSync(path.join(STORIES, 'tokenizer.json'), 'utf8')).model.vocab as Record<string, number>;
  const pieces = Object.entries(vocab)
    .sort((a, b) => a[1] - b[1])
    .map(([p]) => p);
  return {
    'tokenizer.ggml.model': str('llama'),
    'tokenizer.ggml.tokens': strings(pieces),
    'tokenizer.ggml.scores': floats(tok512Scores(pieces.length)),
    'tokenizer.ggml.token_type': ints(pieces.map((_, id) => (id === 0 ? 2 : id < 3 ? 3 : id < 259 ? 6 : 1))),
    'tokenizer.ggml.bos_token_id': u32(1),
    'tokenizer.ggml.eos_token_id': u32(2),
    'tokenizer.ggml.unknown_token_id': u32(0),
    'tokenizer.ggml.add_bos_token': bool(true),
    'tokenizer.ggml.add_eos_token': bool(false),
    'tokenizer.chat_template': str(TEST_CHAT_TEMPLATE),
  };
}

/** convert_hf_to_gguf.py's LlamaModel.permute: Hugging Face's rotate-half rows → interleaved pairs. */
export function permuteRows(rows: Float32Array, heads: number, headDim: number): Float32Array {
  const width = rows.length / (heads * headDim);
  const out = new Float32Array(rows.length);
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < headDim; j++) {
      const to = j < headDim / 2 ? 2 * j : 2 * (j - headDim / 2) + 1;
      out.set(rows.subarray((h * headDim + j) * width, (h * headDim + j + 1) * width), (h * headDim + to) * width);
    }
  }
  return out;
}

/** The piece scores of llama2.c's tok512.bin (float score, int32 length, bytes per piece). */
function tok512Scores(count: number): number[] {
  const bin = fs.readFileSync(LLAMA2C_TOKENIZER);
  const scores: number[] = [];
  for (let at = 4, i = 0; i < count; i++) {
    scores.push(bin.readFloatLE(at));
    at += 8 + bin.readInt32LE(at + 4);
  }
  return scores;
}

// Imports a llama.cpp GGUF file (llama, mistral and qwen2 architectures; GGUF v2
// and v3) into the same in-memory form as a Hugging Face folder: header, metadata
// and tensor infos come from @huggingface/gguf; this file maps llama.cpp's names
// and hyper-parameters onto the engine's and checks every tensor lies in the file.

import * as fs from 'fs';
import * as path from 'path';
import { gguf, GGMLQuantizationType } from '@huggingface/gguf';
import type { GGUFParseOutput } from '@huggingface/gguf';
import { ModelLoadError, unreadable } from './errors';
import { legacyFingerprint, modelFingerprint } from './fingerprint';
import { dequantize, GGML_BLOCKS, GGML_TYPE_CODES, ggmlByteLength } from './ggml';
import { ggufTokenizer } from './gguf_tokenizer';
import type { BaseModel, Family, GgmlType, ModelConfig, RopeFactors, TensorRef, WeightStore } from './types';
import { checkWeights, readBytes } from './weights';

export type GgufMetadata = Record<string, unknown>;

/** general.architecture → the engine's family and the Transformers class it corresponds to. */
const ARCHITECTURES: Record<string, { family: Family; architecture: string }> = {
  llama: { family: 'llama', architecture: 'LlamaForCausalLM' },
  mistral: { family: 'mistral', architecture: 'MistralForCausalLM' },
  qwen2: { family: 'qwen2', architecture: 'Qwen2ForCausalLM' },
};
export const GGUF_ARCHITECTURES = Object.keys(ARCHITECTURES);

/** llama.cpp tensor name → Hugging Face name (per layer: `blk.{i}.` → `model.layers.{i}.`). */
const GLOBAL_NAMES: Record<string, string> = {
  'token_embd.weight': 'model.embed_tokens.weight',
  'output_norm.weight': 'model.norm.weight',
  'output.weight': 'lm_head.weight',
};
const LAYER_NAMES: Record<string, string> = {
  'attn_norm.weight': 'input_layernorm.weight',
  'attn_q.weight': 'self_attn.q_proj.weight',
  'attn_k.weight': 'self_attn.k_proj.weight',
  'attn_v.weight': 'self_attn.v_proj.weight',
  'attn_q.bias': 'self_attn.q_proj.bias',
  'attn_k.bias': 'self_attn.k_proj.bias',
  'attn_v.bias': 'self_attn.v_proj.bias',
  'attn_output.weight': 'self_attn.o_proj.weight',
  'ffn_norm.weight': 'post_attention_layernorm.weight',
  'ffn_gate.weight': 'mlp.gate_proj.weight',
  'ffn_up.weight': 'mlp.up_proj.weight',
  'ffn_down.weight': 'mlp.down_proj.weight',
};
/** Llama 3's frequency factors: read into the config, not a weight of the decoder. */
const ROPE_FREQS = 'rope_freqs.weight';

/** A parsed GGUF header: metadata by key, tensor infos with absolute offsets. */
export interface GgufHeader {
  file: string;
  version: number;
  metadata: GgufMetadata;
  tensors: GGUFParseOutput['tensorInfos'];
  dataOffset: number;
}

/** Whether the file starts with GGUF's magic bytes. */
export function isGgufFile(file: string): boolean {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const magic = Buffer.alloc(4);
      return fs.readSync(fd, magic, 0, 4, 0) === 4 && magic.toString('latin1') === 'GGUF';
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return false;
  }
}

/** Reads the header, metadata and tensor infos, with one-line errors that name the file. */
export async function readGgufHeader(file: string): Promise<GgufHeader> {
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch (err) {
    throw unreadable(file, err);
  }
  let parsed: GGUFParseOutput<{ strict: false }>;
  try {
    parsed = (await gguf(file, { allowLocalFile: true })) as unknown as GGUFParseOutput<{ strict: false }>;
  } catch (err) {
    throw new ModelLoadError(`${file}: not a readable GGUF file (${(err as Error).message})`);
  }
  const version = Number(parsed.metadata.version);
  if (version !== 2 && version !== 3)
    throw new ModelLoadError(`${file}: GGUF version ${version} is not supported (2 and 3 are); convert it again with a current llama.cpp`);
  if (!parsed.littleEndian) throw new ModelLoadError(`${file}: a big-endian GGUF file; only little-endian files are supported`);
  const dataOffset = Number(parsed.tensorDataOffset);
  if (dataOffset > size) throw new ModelLoadError(`${file}: truncated: the header ends past the end of the file (${size} bytes)`);
  return { file, version, metadata: parsed.metadata as GgufMetadata, tensors: parsed.tensorInfos, dataOffset };
}

/** Imports a GGUF model file: config, tensors read in place (dequantized on use), tokenizer and chat template. */
export async function importGguf(file: string, name?: string): Promise<BaseModel> {
  const source = path.resolve(file);
  const header = await readGgufHeader(source);
  const meta = new Metadata(header.metadata, source);
  const weights = new GgufWeightStore(tensorRefs(header, source));
  const config = configOf(meta, header, source);
  const factors = weights.tensors.get(ROPE_FREQS);
  if (factors) config.ropeScaling = ropeFactors(weights, factors, config, source);
  checkWeights(weights, config, source);
  const tokenizer = ggufTokenizer(meta, source);
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new ModelLoadError(
      `${source}: the tokenizer has ${tokenizer.vocabSize} tokens but token_embd.weight has ${config.vocabSize} rows`,
    );
  }
  const eos = ['tokenizer.ggml.eos_token_id', 'tokenizer.ggml.eot_token_id', 'tokenizer.ggml.eom_token_id'].flatMap((k) => {
    const id = meta.optionalInt(k);
    return id == null ? [] : [id];
  });
  return {
    name: name ?? (meta.optionalString('general.name') || path.basename(source, path.extname(source))),
    source,
    config,
    weights,
    tokenizer,
    generation: { bosTokenId: meta.optionalInt('tokenizer.ggml.bos_token_id'), eosTokenIds: [...new Set(eos)] },
    fingerprint: modelFingerprint(config, weights, tokenizer.vocabulary()),
    legacyFingerprint: legacyFingerprint(config, weights.tensors.get('model.embed_tokens.weight')!),
  };
}

/** Typed reads of GGUF metadata values, naming the key and the file when one is missing or of the wrong type. */
export class Metadata {
  constructor(
    readonly values: GgufMetadata,
    readonly file: string,
  ) {}

  has(key: string): boolean {
    return this.values[key] !== undefined;
  }

  private fail(key: string, expected: string): never {
    const v = this.values[key];
    const found = v === undefined ? 'missing' : `found ${typeof v === 'bigint' ? v.toString() : JSON.stringify(v)?.slice(0, 60)}`;
    throw new ModelLoadError(`${this.file}: metadata "${key}" must be ${expected} (${found})`);
  }

  int(key: string, fallback?: number): number {
    const v = this.values[key];
    if (v === undefined && fallback !== undefined) return fallback;
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) this.fail(key, 'a non-negative integer');
    return n;
  }

  optionalInt(key: string): number | null {
    return this.has(key) ? this.int(key) : null;
  }

  positive(key: string, fallback?: number): number {
    const v = this.values[key];
    if (v === undefined && fallback !== undefined) return fallback;
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) this.fail(key, 'a positive number');
    return n;
  }

  string(key: string): string {
    const v = this.values[key];
    if (typeof v !== 'string') this.fail(key, 'a string');
    return v;
  }

  optionalString(key: string): string | null {
    return this.has(key) ? this.string(key) : null;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.values[key];
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') this.fail(key, 'true or false');
    return v;
  }

  /** An array whose items all pass `check`. */
  array<T>(key: string, check: (v: unknown) => v is T, expected: string): T[] {
    const v = this.values[key];
    if (!Array.isArray(v) || !v.every(check)) this.fail(key, `an array of ${expected}`);
    return v as T[];
  }
}

/** The architecture a GGUF file declares, and the reason when Aligner cannot run it. */
export function ggufArchitecture(metadata: GgufMetadata): { arch: string; unsupported: string | null } {
  const arch = typeof metadata['general.architecture'] === 'string' ? (metadata['general.architecture'] as string) : '';
  if (!arch) return { arch: '?', unsupported: 'no general.architecture in the metadata' };
  if (!ARCHITECTURES[arch]) return { arch, unsupported: `unsupported architecture "${arch}"; supported: ${GGUF_ARCHITECTURES.join(', ')}` };
  return { arch, unsupported: null };
}

function configOf(meta: Metadata, header: GgufHeader, file: string): ModelConfig {
  const { arch, unsupported } = ggufArchitecture(meta.values);
  if (unsupported) throw new ModelLoadError(`${file}: ${unsupported} (general.architecture)`);
  const { family, architecture } = ARCHITECTURES[arch];
  const key = (k: string) => `${arch}.${k}`;
  const hiddenSize = meta.positive(key('embedding_length'));
  const numHeads = meta.int(key('attention.head_count'));
  const numKvHeads = meta.int(key('attention.head_count_kv'), numHeads);
  if (numHeads === 0 || numKvHeads === 0 || numHeads % numKvHeads !== 0) {
    throw new ModelLoadError(
      `${file}: ${key('attention.head_count_kv')} (${numKvHeads}) must divide ${key('attention.head_count')} (${numHeads})`,
    );
  }
  const headDim = meta.int(key('attention.key_length'), hiddenSize / numHeads);
  if (!Number.isInteger(headDim) || headDim === 0 || headDim % 2 !== 0)
    throw new ModelLoadError(`${file}: head size ${headDim} is not a positive even integer`);
  if (meta.int(key('attention.value_length'), headDim) !== headDim)
    throw new ModelLoadError(`${file}: ${key('attention.value_length')} differs from the key length; not supported`);
  if (meta.int(key('rope.dimension_count'), headDim) !== headDim)
    throw new ModelLoadError(
      `${file}: ${key('rope.dimension_count')} is not the head size ${headDim}; partial rotary embeddings are not supported`,
    );
  const scaling = meta.optionalString(key('rope.scaling.type'));
  if (scaling && scaling !== 'none')
    throw new ModelLoadError(
      `${file}: unsupported ${key('rope.scaling.type')} "${scaling}"; supported: none (and Llama 3 frequency factors)`,
    );
  const embedding = header.tensors.find((t) => t.name === 'token_embd.weight');
  if (!embedding || embedding.shape.length !== 2) throw new ModelLoadError(`${file}: no 2-D tensor "token_embd.weight"`);
  return {
    family,
    architecture,
    hiddenSize,
    intermediateSize: meta.int(key('feed_forward_length')),
    numLayers: meta.int(key('block_count')),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: Number(embedding.shape[1]),
    maxPositions: meta.int(key('context_length')),
    rmsNormEps: decimalOf(meta.positive(key('attention.layer_norm_rms_epsilon'))),
    ropeTheta: decimalOf(meta.positive(key('rope.freq_base'), 10000)),
    ropeScaling: null,
    // llama.cpp's converter permutes the q/k rows of llama and mistral models from Hugging Face's
    // rotate-half order into Meta's interleaved pairs (its LLAMA_ROPE_TYPE_NORM); the engine rotates
    // those rows in place instead of permuting them back. Qwen2 keeps rotate-half (NEOX).
    ropeLayout: family === 'qwen2' ? 'half' : 'interleaved',
    attentionBias: family === 'qwen2',
    tieWordEmbeddings: !header.tensors.some((t) => t.name === 'output.weight'),
  };
}

/**
 * GGUF stores these as float32; the shortest decimal with the same float32 is the value the
 * converter read from config.json (1e-5, not 9.99999974737875e-6), so configs and fingerprints
 * agree with the Hugging Face folder's.
 */
function decimalOf(x: number): number {
  for (let digits = 1; digits < 9; digits++) {
    const d = Number(x.toPrecision(digits));
    if (Math.fround(d) === x) return d;
  }
  return x;
}

/** Each tensor by Hugging Face name, with its type, row-major shape and absolute byte range checked against the file. */
function tensorRefs(header: GgufHeader, file: string): TensorRef<GgmlType>[] {
  const size = fs.statSync(file).size;
  const alignment = header.metadata['general.alignment'] === undefined ? 32 : Number(header.metadata['general.alignment']);
  return header.tensors.map((t) => {
    const name = hfName(t.name, file);
    const dtype = GGML_TYPE_CODES[t.dtype];
    if (!dtype) {
      const typeName = GGMLQuantizationType[t.dtype] ?? `type ${t.dtype}`;
      throw new ModelLoadError(
        `${file}: tensor "${t.name}" has tensor type ${typeName}, not supported; supported: ${Object.values(GGML_TYPE_CODES).join(', ')}`,
      );
    }
    // GGUF lists dimensions innermost first; Hugging Face shapes are outermost first.
    const shape = t.shape.map(Number).reverse();
    const count = shape.reduce((a, b) => a * b, 1);
    const rowLength = shape[shape.length - 1];
    if (rowLength % GGML_BLOCKS[dtype].values !== 0)
      throw new ModelLoadError(`${file}: tensor "${t.name}" has rows of ${rowLength} values, not whole ${dtype} blocks`);
    const relative = Number(t.offset);
    if (relative % alignment !== 0)
      throw new ModelLoadError(`${file}: tensor "${t.name}" starts at ${relative}, not a multiple of the alignment ${alignment}`);
    const offset = header.dataOffset + relative;
    const byteLength = ggmlByteLength(dtype, count);
    if (offset + byteLength > size)
      throw new ModelLoadError(`${file}: truncated: tensor "${t.name}" ends at byte ${offset + byteLength} but the file has ${size}`);
    return { name, dtype, shape, file, offset, byteLength };
  });
}

function hfName(name: string, file: string): string {
  if (name === ROPE_FREQS) return name;
  const global = GLOBAL_NAMES[name];
  if (global) return global;
  const m = /^blk\.(\d+)\.(.+)$/.exec(name);
  const layer = m && LAYER_NAMES[m[2]];
  if (!layer) throw new ModelLoadError(`${file}: tensor "${name}" is not part of a llama/qwen2 decoder; this model is not supported`);
  return `model.layers.${m[1]}.${layer}`;
}

function ropeFactors(weights: GgufWeightStore, ref: TensorRef<GgmlType>, config: ModelConfig, file: string): RopeFactors {
  if (ref.shape.length !== 1 || ref.shape[0] !== config.headDim / 2) {
    throw new ModelLoadError(`${file}: tensor "${ROPE_FREQS}" has shape [${ref.shape}], expected [${config.headDim / 2}]`);
  }
  const factors = Array.from(weights.f32(ROPE_FREQS));
  if (!factors.every((f) => Number.isFinite(f) && f > 0))
    throw new ModelLoadError(`${file}: tensor "${ROPE_FREQS}" holds a factor that is not a positive number`);
  return { type: 'factors', factors };
}

/** Tensors read from the GGUF file on demand and dequantized to float32; nothing is cached. */
class GgufWeightStore implements WeightStore {
  readonly tensors: ReadonlyMap<string, TensorRef<GgmlType>>;

  constructor(refs: TensorRef<GgmlType>[]) {
    this.tensors = new Map(refs.map((r) => [r.name, r]));
  }

  f32(name: string): Float32Array {
    const ref = this.tensors.get(name);
    if (!ref) throw new ModelLoadError(`weight "${name}" is not in the model`);
    return dequantize(readBytes(ref, 0, ref.byteLength), ref.dtype);
  }
}

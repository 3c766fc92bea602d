// The in-memory form of a base model, shared by the Hugging Face loader, the
// llama2.c importer, the engine and the adapter files.

import type { DecoderConfig } from '../../kernels/config';

export type { RopeLayout } from '../../kernels/config';

export type Family = 'llama' | 'mistral' | 'qwen2';

export interface Llama3RopeScaling {
  type: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositions: number;
}

/** llama.cpp's form of the same rescaling (GGUF tensor rope_freqs.weight): each inverse frequency is divided by its factor. */
export interface RopeFactors {
  type: 'factors';
  factors: number[];
}

/** The decoder's shape (kernels/config.ts) plus what only the host needs. */
export interface ModelConfig extends DecoderConfig {
  family: Family;
  /** e.g. "LlamaForCausalLM", as named in config.json. */
  architecture: string;
  intermediateSize: number;
  vocabSize: number;
  maxPositions: number;
  ropeTheta: number;
  ropeScaling: Llama3RopeScaling | RopeFactors | null;
  /** q/k/v projections carry a bias (Qwen2). */
  attentionBias: boolean;
}

export type DType = 'F32' | 'F16' | 'BF16';

/** llama.cpp's block-quantized types that GGUF files may hold (see src/model/ggml.ts). */
export type QuantType = 'Q8_0' | 'Q4_0' | 'Q4_1' | 'Q4_K' | 'Q5_K' | 'Q6_K';

/** Every stored tensor type Aligner reads: safetensors' floats and GGUF's blocks. */
export type GgmlType = DType | QuantType;

/** Where the raw bytes of one weight tensor live on disk (row-major, little-endian; quantized rows are whole blocks). */
export interface TensorRef<T extends GgmlType = DType> {
  name: string;
  dtype: T;
  shape: number[];
  file: string;
  offset: number;
  byteLength: number;
}

/**
 * Weights by Hugging Face name: `model.embed_tokens.weight`,
 * `model.layers.{i}.input_layernorm.weight`, `model.layers.{i}.self_attn.{q,k,v,o}_proj.weight`
 * (and `.bias` for q/k/v when attentionBias), `model.layers.{i}.post_attention_layernorm.weight`,
 * `model.layers.{i}.mlp.{gate,up,down}_proj.weight`, `model.norm.weight`, `lm_head.weight` (absent when tied).
 */
export interface WeightStore {
  readonly tensors: ReadonlyMap<string, TensorRef<GgmlType>>;
  /** The tensor as float32 (converted from f16/bf16 or dequantized when needed). Throws naming the tensor if absent. */
  f32(name: string): Float32Array;
}

export interface GenerationDefaults {
  bosTokenId: number | null;
  /** Every id that ends generation (generation_config's eos_token_id, scalar or list). */
  eosTokenIds: number[];
  temperature?: number;
  topP?: number;
  topK?: number;
  repetitionPenalty?: number;
  maxNewTokens?: number;
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface TextTokenizer {
  readonly vocabSize: number;
  /** BOS is added when the tokenizer's post-processor says so and addSpecialTokens is not false. */
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  decode(ids: number[], opts?: { skipSpecialTokens?: boolean }): string;
  /** The id of a token given by its text (special tokens included), or null when the vocabulary lacks it. */
  tokenId(token: string): number | null;
  /** The chat template rendered to text, or null when the model has no chat template. */
  applyChatTemplate(messages: ChatMessage[], opts?: { addGenerationPrompt?: boolean }): string | null;
}

export interface BaseModel {
  /** Human name: the folder name, or the checkpoint name for an import. */
  name: string;
  /** Folder (or checkpoint file) it was loaded from. */
  source: string;
  config: ModelConfig;
  weights: WeightStore;
  tokenizer: TextTokenizer;
  generation: GenerationDefaults;
  /** The model's identity, the same at every storage type (src/model/fingerprint.ts); adapters record it. */
  fingerprint: string;
  /** The fingerprint of adapters written before it was storage-independent (config + raw embedding bytes). */
  legacyFingerprint: string;
}

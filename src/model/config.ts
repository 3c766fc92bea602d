import { excerpt } from '../util/json';
import { ModelLoadError } from './errors';
import type { Family, Llama3RopeScaling, ModelConfig } from './types';

const ARCHITECTURES: Record<string, Family> = {
  LlamaForCausalLM: 'llama',
  MistralForCausalLM: 'mistral',
  Qwen2ForCausalLM: 'qwen2',
};

/** Transformers' defaults for fields a config.json may leave out. */
const DEFAULTS: Record<Family, { maxPositions: number; rmsNormEps: number }> = {
  llama: { maxPositions: 2048, rmsNormEps: 1e-6 },
  mistral: { maxPositions: 4096 * 32, rmsNormEps: 1e-6 },
  qwen2: { maxPositions: 32768, rmsNormEps: 1e-6 },
};

type Json = Record<string, unknown>;

/** Reads a Hugging Face config.json (already parsed) into a ModelConfig; `file` is used in error messages. */
export function parseConfig(json: unknown, file: string): ModelConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ModelLoadError(`${file}: expected a JSON object`);
  }
  const c = json as Json;
  const { architecture, family } = readArchitecture(c, file);
  checkSupported(c, family, file);
  const hiddenSize = positiveInt(c, 'hidden_size', file);
  const numHeads = positiveInt(c, 'num_attention_heads', file);
  const numKvHeads = c.num_key_value_heads == null ? numHeads : positiveInt(c, 'num_key_value_heads', file);
  if (numHeads % numKvHeads !== 0) {
    throw new ModelLoadError(`${file}: num_key_value_heads (${numKvHeads}) must divide num_attention_heads (${numHeads})`);
  }
  const headDim = c.head_dim == null ? hiddenSize / numHeads : positiveInt(c, 'head_dim', file);
  if (!Number.isInteger(headDim)) {
    throw new ModelLoadError(
      `${file}: hidden_size (${hiddenSize}) is not a multiple of num_attention_heads (${numHeads}) and there is no head_dim`,
    );
  }
  const defaults = DEFAULTS[family];
  // Mistral's sliding_window is accepted but not applied: prompts longer than the window are
  // computed with full attention, which only differs from the reference past that length.
  return {
    family,
    architecture,
    hiddenSize,
    intermediateSize: positiveInt(c, 'intermediate_size', file),
    numLayers: positiveInt(c, 'num_hidden_layers', file),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: positiveInt(c, 'vocab_size', file),
    maxPositions: c.max_position_embeddings == null ? defaults.maxPositions : positiveInt(c, 'max_position_embeddings', file),
    rmsNormEps: c.rms_norm_eps == null ? defaults.rmsNormEps : positiveNumber(c, 'rms_norm_eps', file),
    ropeTheta: c.rope_theta == null ? 10000 : positiveNumber(c, 'rope_theta', file),
    ropeScaling: readRopeScaling(c.rope_scaling, file),
    ropeLayout: 'half',
    attentionBias: family === 'qwen2',
    tieWordEmbeddings: c.tie_word_embeddings == null ? false : bool(c, 'tie_word_embeddings', file),
  };
}

function readArchitecture(c: Json, file: string): { architecture: string; family: Family } {
  const supported = Object.keys(ARCHITECTURES).join(', ');
  const list = c.architectures;
  if (!Array.isArray(list) || list.length !== 1 || typeof list[0] !== 'string') {
    throw new ModelLoadError(`${file}: field "architectures" must list exactly one architecture; supported: ${supported}`);
  }
  const architecture = list[0];
  const family = ARCHITECTURES[architecture];
  if (!family) {
    throw new ModelLoadError(`${file}: unsupported architecture ${excerpt(architecture)} (field "architectures"); supported: ${supported}`);
  }
  if (c.model_type != null && c.model_type !== family) {
    throw new ModelLoadError(`${file}: field "model_type" is ${excerpt(c.model_type)} but architecture ${architecture} needs "${family}"`);
  }
  return { architecture, family };
}

/** Rejects the options that would change the computation in ways the engine does not implement. */
function checkSupported(c: Json, family: Family, file: string): void {
  const act = c.hidden_act ?? 'silu';
  if (act !== 'silu') unsupported(file, 'hidden_act', act, 'supported: "silu"');
  if (c.mlp_bias === true) unsupported(file, 'mlp_bias', true, 'the MLP must have no biases');
  // Llama's attention_bias also puts a bias on o_proj, which the engine (q/k/v biases only) lacks.
  if (family !== 'qwen2' && c.attention_bias === true) {
    unsupported(file, 'attention_bias', true, 'only Qwen2-style q/k/v biases are supported');
  }
  if (c.quantization_config != null) unsupported(file, 'quantization_config', 'present', 'weights must be f32, f16 or bf16');
}

function readRopeScaling(value: unknown, file: string): Llama3RopeScaling | null {
  if (value == null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) unsupported(file, 'rope_scaling', value, 'expected null or an object');
  const s = value as Json;
  const type = s.rope_type ?? s.type;
  if (type === 'default') return null;
  if (type !== 'llama3') unsupported(file, 'rope_scaling', type, 'supported rope_scaling types: "llama3"');
  const field = (name: string) => positiveNumber(s, name, file, 'rope_scaling.');
  return {
    type: 'llama3',
    factor: field('factor'),
    lowFreqFactor: field('low_freq_factor'),
    highFreqFactor: field('high_freq_factor'),
    originalMaxPositions: field('original_max_position_embeddings'),
  };
}

function unsupported(file: string, field: string, value: unknown, hint: string): never {
  throw new ModelLoadError(`${file}: unsupported ${field} ${excerpt(value)} (field "${field}"); ${hint}`);
}

function positiveNumber(c: Json, name: string, file: string, prefix = ''): number {
  const v = c[name];
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw new ModelLoadError(`${file}: field "${prefix}${name}" must be a positive number, found ${excerpt(v)}`);
  }
  return v;
}

function positiveInt(c: Json, name: string, file: string): number {
  const v = c[name];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
    throw new ModelLoadError(`${file}: field "${name}" must be a positive integer, found ${excerpt(v)}`);
  }
  return v;
}

function bool(c: Json, name: string, file: string): boolean {
  const v = c[name];
  if (typeof v !== 'boolean') throw new ModelLoadError(`${file}: field "${name}" must be true or false, found ${excerpt(v)}`);
  return v;
}

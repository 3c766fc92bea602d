// Deterministic random-weight Llama models for the bench, written as Hugging Face folders
// (config.json, model.safetensors, generation_config.json, tokenizer files copied from
// stories260K so that the loader finds a tokenizer; the bench feeds token ids directly).

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { numel, TensorSource, writeSafetensors } from './safetensors_writer';
import { Rng } from '../../src/util/random';

export interface RandomModelSpec {
  name: string;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  ffn: number;
  vocab: number;
  tied: boolean;
  ropeTheta: number;
  maxPositions: number;
  seed: number;
}

export const RANDOM_MODELS: RandomModelSpec[] = [
  {
    name: 'tiny15m',
    hidden: 288,
    layers: 6,
    heads: 6,
    kvHeads: 6,
    ffn: 768,
    vocab: 32000,
    tied: false,
    ropeTheta: 10000,
    maxPositions: 2048,
    seed: 15,
  },
  {
    name: 'smol135m',
    hidden: 576,
    layers: 30,
    heads: 9,
    kvHeads: 3,
    ffn: 1536,
    vocab: 49152,
    tied: true,
    ropeTheta: 100000,
    maxPositions: 2048,
    seed: 135,
  },
  // Qwen2.5-0.5B's shape (without its q/k/v biases): the smallest model people run as a local assistant.
  {
    name: 'qwen05b',
    hidden: 896,
    layers: 24,
    heads: 14,
    kvHeads: 2,
    ffn: 4864,
    vocab: 151936,
    tied: true,
    ropeTheta: 1000000,
    maxPositions: 32768,
    seed: 500,
  },
];

/** Bumped whenever the generated content changes, so stale folders are rebuilt. */
const GENERATOR_VERSION = 1;
const MARKER = 'bench-model.json';
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'];

export function benchModelsRoot(): string {
  return path.join(os.tmpdir(), 'aligner-bench-models');
}

/** FNV-1a of a string, for per-tensor seeds independent of write order. */
function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

function tensorList(spec: RandomModelSpec): { name: string; shape: number[]; ones: boolean }[] {
  const d = spec.hidden;
  const hd = d / spec.heads;
  const kv = spec.kvHeads * hd;
  const list: { name: string; shape: number[]; ones: boolean }[] = [];
  list.push({ name: 'model.embed_tokens.weight', shape: [spec.vocab, d], ones: false });
  for (let i = 0; i < spec.layers; i++) {
    const p = `model.layers.${i}.`;
    list.push({ name: p + 'input_layernorm.weight', shape: [d], ones: true });
    list.push({ name: p + 'self_attn.q_proj.weight', shape: [d, d], ones: false });
    list.push({ name: p + 'self_attn.k_proj.weight', shape: [kv, d], ones: false });
    list.push({ name: p + 'self_attn.v_proj.weight', shape: [kv, d], ones: false });
    list.push({ name: p + 'self_attn.o_proj.weight', shape: [d, d], ones: false });
    list.push({ name: p + 'post_attention_layernorm.weight', shape: [d], ones: true });
    list.push({ name: p + 'mlp.gate_proj.weight', shape: [spec.ffn, d], ones: false });
    list.push({ name: p + 'mlp.up_proj.weight', shape: [spec.ffn, d], ones: false });
    list.push({ name: p + 'mlp.down_proj.weight', shape: [d, spec.ffn], ones: false });
  }
  list.push({ name: 'model.norm.weight', shape: [d], ones: true });
  if (!spec.tied) list.push({ name: 'lm_head.weight', shape: [spec.vocab, d], ones: false });
  return list;
}

export function parameterCount(spec: RandomModelSpec): number {
  return tensorList(spec).reduce((a, t) => a + numel(t.shape), 0);
}

function configJson(spec: RandomModelSpec): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: spec.hidden,
    intermediate_size: spec.ffn,
    num_hidden_layers: spec.layers,
    num_attention_heads: spec.heads,
    num_key_value_heads: spec.kvHeads,
    head_dim: spec.hidden / spec.heads,
    vocab_size: spec.vocab,
    max_position_embeddings: spec.maxPositions,
    rms_norm_eps: 1e-5,
    rope_theta: spec.ropeTheta,
    rope_scaling: null,
    hidden_act: 'silu',
    attention_bias: false,
    mlp_bias: false,
    initializer_range: 0.02,
    tie_word_embeddings: spec.tied,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: 'float32',
    use_cache: true,
  };
}

function markerContent(spec: RandomModelSpec, bytes: number): string {
  return JSON.stringify({ generatorVersion: GENERATOR_VERSION, spec, safetensorsBytes: bytes }, null, 2) + '\n';
}

/** True when `dir` holds a finished model for exactly this spec. */
function isComplete(dir: string, spec: RandomModelSpec): boolean {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, MARKER), 'utf8'));
    if (m.generatorVersion !== GENERATOR_VERSION || JSON.stringify(m.spec) !== JSON.stringify(spec)) return false;
    if (fs.statSync(path.join(dir, 'model.safetensors')).size !== m.safetensorsBytes) return false;
    for (const f of ['config.json', 'generation_config.json', 'tokenizer.json']) {
      if (!fs.existsSync(path.join(dir, f))) return false;
    }
    return true;
  } catch {
    return false;
  }
}

/**
 * Returns the folder of the random model, building it if absent or incomplete.
 * `tokenizerDir` is a model folder whose tokenizer files are copied (the loader requires one).
 */
export function ensureRandomModel(spec: RandomModelSpec, tokenizerDir: string, log: (s: string) => void = () => {}): string {
  const dir = path.join(benchModelsRoot(), spec.name);
  if (isComplete(dir, spec)) {
    log(`reusing ${dir}`);
    return dir;
  }
  const t0 = Date.now();
  fs.mkdirSync(dir, { recursive: true });
  fs.rmSync(path.join(dir, MARKER), { force: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(configJson(spec), null, 2) + '\n');
  fs.writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify({ bos_token_id: 1, eos_token_id: 2 }, null, 2) + '\n');
  for (const f of TOKENIZER_FILES) {
    const src = path.join(tokenizerDir, f);
    const dst = path.join(dir, f);
    if (!fs.existsSync(src)) continue;
    fs.rmSync(dst, { force: true });
    fs.copyFileSync(src, dst);
    fs.chmodSync(dst, 0o644); // the shared originals are read-only
  }
  const sources: TensorSource[] = tensorList(spec).map((t) => {
    const rng = new Rng(hash32(`${spec.seed}:${spec.name}:${t.name}`));
    return {
      name: t.name,
      shape: t.shape,
      fill(dst: Float32Array) {
        if (t.ones) dst.fill(1);
        else for (let i = 0; i < dst.length; i++) dst[i] = 0.02 * rng.normal();
      },
    };
  });
  log(`building ${spec.name} (${(parameterCount(spec) / 1e6).toFixed(1)}M parameters) in ${dir}`);
  const bytes = writeSafetensors(path.join(dir, 'model.safetensors'), sources);
  fs.writeFileSync(path.join(dir, MARKER), markerContent(spec, bytes));
  log(`built ${spec.name}: ${(bytes / 2 ** 20).toFixed(0)} MiB in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
  return dir;
}

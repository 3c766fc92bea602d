// The identity of a base model that adapters record (SPEC §5 base_fingerprint): the
// same model as a Hugging Face folder, a llama2.c checkpoint or a GGUF file at any
// storage type gets the same fingerprint; another model gets another.

import { createHash } from 'crypto';
import { expectedWeights, readBytes } from './weights';
import { inverseFrequencies } from './rope';
import type { GgmlType, ModelConfig, TensorRef, WeightStore } from './types';

/**
 * sha256 (hex, 16 chars) over
 * - the config fields that shape the computation, with the rotary scaling as the inverse
 *   frequencies it yields (Llama 3's rope_scaling and llama.cpp's rope_freqs factors agree);
 * - the tokenizer's vocabulary, token by id, without the `[PAD<id>]` fillers llama.cpp's
 *   converter appends up to the embedding's row count;
 * - every RMSNorm weight vector rounded to bfloat16. Norms are the one weight every format keeps
 *   unquantized (llama.cpp stores 1-D tensors as F32 at every quantization), and rounding to bf16
 *   makes an f32 checkpoint agree with its bf16 release and with f16 copies of a bf16 one.
 *   A fine-tune moves its norms, so it gets its own fingerprint.
 * Not covered: an f16 copy of an f32 checkpoint (f16 then bf16 rounding can differ from bf16 rounding),
 * and a merge that leaves every norm and the vocabulary as they were.
 * The rotary layout is left out on purpose: llama.cpp's interleaved q/k rows compute the same function.
 */
export function modelFingerprint(config: ModelConfig, weights: WeightStore, vocabulary: readonly string[]): string {
  const fields = {
    ...shapeFields(config),
    // Six significant digits: float32 factors from a GGUF and float64 ones from a config.json agree.
    inverseFrequencies: Array.from(inverseFrequencies(config), (f) => Number(f.toPrecision(6))),
    attentionBias: config.attentionBias,
    tieWordEmbeddings: config.tieWordEmbeddings,
  };
  const hash = createHash('sha256').update(JSON.stringify(fields));
  hash.update(JSON.stringify(vocabulary.filter((token, id) => token !== `[PAD${id}]`)));
  for (const name of expectedWeights(config).keys()) {
    if (/(layernorm|\.norm)\.weight$/.test(name)) hash.update(bfloat16(weights.f32(name)));
  }
  return hash.digest('hex').slice(0, 16);
}

/** The config fields both fingerprints hash first, in this order (the order is part of the hash). */
function shapeFields(config: ModelConfig) {
  const { family, hiddenSize, intermediateSize, numLayers, numHeads, numKvHeads, headDim, vocabSize, rmsNormEps } = config;
  return { family, hiddenSize, intermediateSize, numLayers, numHeads, numKvHeads, headDim, vocabSize, rmsNormEps };
}

/** float32 → bfloat16 bits, rounded to nearest even (as torch's .to(torch.bfloat16)). */
function bfloat16(x: Float32Array): Uint8Array {
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = (bits[i] + 0x7fff + ((bits[i] >>> 16) & 1)) >>> 16;
  return new Uint8Array(out.buffer);
}

/** Enough of the embedding to tell models apart without reading gigabytes. */
const EMBEDDING_BYTES = 1 << 20;

/**
 * The fingerprint adapters recorded before it was storage-independent: the config fields and the
 * first MiB of the embedding's raw bytes, so it names one model file at one storage type. Still
 * accepted (see adapter/fit.ts) for adapters loaded on that very file.
 */
export function legacyFingerprint(config: ModelConfig, embedding: TensorRef<GgmlType>): string {
  const fields = {
    ...shapeFields(config),
    ropeTheta: config.ropeTheta,
    ropeScaling: config.ropeScaling,
    attentionBias: config.attentionBias,
    tieWordEmbeddings: config.tieWordEmbeddings,
    embedding: { dtype: embedding.dtype, shape: embedding.shape },
  };
  const hash = createHash('sha256').update(JSON.stringify(fields));
  hash.update(readBytes(embedding, 0, Math.min(EMBEDDING_BYTES, embedding.byteLength)));
  return hash.digest('hex').slice(0, 16);
}

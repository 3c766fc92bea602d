import { createHash } from 'crypto';
import type { GgmlType, ModelConfig, TensorRef } from './types';
import { readBytes } from './weights';

/** Enough of the embedding to tell models apart without reading gigabytes. */
const EMBEDDING_BYTES = 1 << 20;

/**
 * A cheap identity of a base model, recorded in adapters: sha256 over the config fields that shape
 * the computation and the first MiB of the raw embedding bytes (hex, 16 chars). The rotary layout
 * is left out on purpose: an imported llama2.c checkpoint and its Hugging Face conversion compute
 * the same function, so an adapter trained on one fits the other.
 */
export function modelFingerprint(config: ModelConfig, embedding: TensorRef<GgmlType>): string {
  const fields = {
    family: config.family,
    hiddenSize: config.hiddenSize,
    intermediateSize: config.intermediateSize,
    numLayers: config.numLayers,
    numHeads: config.numHeads,
    numKvHeads: config.numKvHeads,
    headDim: config.headDim,
    vocabSize: config.vocabSize,
    rmsNormEps: config.rmsNormEps,
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

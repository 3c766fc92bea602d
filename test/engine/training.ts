// Shared inputs of the training-step tests: a small batch, and Qwen2.5-0.5B's
// shape for the memory rules.

import { makeBatches, TokenBatch } from '../../src/data/batches';
import { toExamples } from '../../src/data/examples';
import type { BaseModel, ModelConfig } from '../../src/model/types';

/** Qwen2.5-0.5B's shape on top of another config's remaining fields. */
export function qwen05bShape(config: ModelConfig): ModelConfig {
  return {
    ...config,
    hiddenSize: 896,
    intermediateSize: 4864,
    numLayers: 24,
    numHeads: 14,
    numKvHeads: 2,
    headDim: 64,
    vocabSize: 151936,
  };
}

/** Four right-padded sentences of different lengths: for comparing two ways of running one step. */
export function fourStories(model: BaseModel): TokenBatch {
  const texts = [
    'Once upon a time there was a cat.',
    'Lily went to the park to play with her ball!',
    'Tom ran.',
    'The sun was big and bright and warm today.',
  ];
  const { items } = toExamples(
    texts.map((text) => ({ text })),
    'text',
    model.tokenizer,
    { maxLen: 64 },
  );
  return makeBatches(items, { batchSize: 4, seed: 0, shuffle: false, padId: 0 })[0];
}

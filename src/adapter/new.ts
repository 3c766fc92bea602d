import type { AdapterWeights } from './types';
import type { ModelConfig } from '../model/types';
import { Rng } from '../util/random';
import { MAX_TOKENS } from './types';

export const DEFAULT_START_LAYER = 2;

/** SPEC §2 "auto": the paper's one-token budget on a 4096-wide model, ceil(4096 / d), clamped to [1, 64]. */
export function defaultTokens(config: Pick<ModelConfig, 'hiddenSize'>): number {
  return Math.min(MAX_TOKENS, Math.max(1, Math.ceil(4096 / config.hiddenSize)));
}

/**
 * A fresh adapter: prefix ~ N(0, 1) from `seed`, gates exactly 0 so that it leaves the base model
 * unchanged until trained.
 */
export function newAdapter(
  config: Pick<ModelConfig, 'hiddenSize' | 'numLayers' | 'numHeads'>,
  tokens: number | 'auto',
  startLayer: number,
  seed: number,
): AdapterWeights {
  const n = tokens === 'auto' ? defaultTokens(config) : tokens;
  if (!Number.isInteger(n) || n < 1 || n > MAX_TOKENS)
    throw new RangeError(`adapter tokens must be an integer from 1 to ${MAX_TOKENS} or "auto", got ${tokens}`);
  if (!Number.isInteger(startLayer) || startLayer < 0 || startLayer >= config.numLayers) {
    throw new RangeError(`adapter start layer must be in [0, ${config.numLayers - 1}], got ${startLayer}`);
  }
  const rng = new Rng(seed);
  const prefix = new Float32Array(n * config.hiddenSize);
  for (let i = 0; i < prefix.length; i++) prefix[i] = rng.normal();
  return { prefix, gates: new Float32Array((config.numLayers - startLayer) * config.numHeads), tokens: n, startLayer };
}

// The rotary embedding's inverse frequencies of a config: used by the engine's
// rotary tables and by the model fingerprint (Llama 3's rope_scaling in a
// config.json and llama.cpp's rope_freqs factors come out the same here).

import type { ModelConfig } from './types';

/** Inverse frequencies θ^(−2i/d_h), with Llama 3's long-context rescaling when configured. */
export function inverseFrequencies(cfg: ModelConfig): Float64Array {
  const half = cfg.headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.pow(cfg.ropeTheta, (2 * i) / cfg.headDim);
  const s = cfg.ropeScaling;
  if (!s) return inv;
  if (s.type === 'factors') return inv.map((f, i) => f / s.factors[i]);
  const lowWavelen = s.originalMaxPositions / s.lowFreqFactor;
  const highWavelen = s.originalMaxPositions / s.highFreqFactor;
  for (let i = 0; i < half; i++) {
    const wavelen = (2 * Math.PI) / inv[i];
    if (wavelen > lowWavelen) inv[i] /= s.factor;
    else if (wavelen >= highWavelen) {
      const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      inv[i] = (1 - smooth) * (inv[i] / s.factor) + smooth * inv[i];
    }
  }
  return inv;
}

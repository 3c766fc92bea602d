// Rotary tables computed on the host, in float64, for each row's positions:
// the graphs take cos/sin as inputs, so one graph serves every layout, theta
// and scaling (SPEC §3: rope_theta, llama3 rope_scaling).

import type { ModelConfig } from '../model/types';

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

/** cos/sin [positions.length, d_h/2] for the given absolute positions. */
export function ropeTables(inv: Float64Array, positions: ArrayLike<number>): { cos: Float32Array; sin: Float32Array } {
  const half = inv.length;
  const cos = new Float32Array(positions.length * half);
  const sin = new Float32Array(positions.length * half);
  for (let p = 0; p < positions.length; p++) {
    for (let i = 0; i < half; i++) {
      const angle = positions[p] * inv[i];
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

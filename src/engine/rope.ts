// Rotary tables computed on the host, in float64, for each row's positions:
// the graphs take cos/sin as inputs, so one graph serves every layout, theta
// and scaling (SPEC §3: rope_theta, llama3 rope_scaling).

export { inverseFrequencies } from '../model/rope';

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

// Global gradient-norm clipping over all trainable tensors, as
// torch.nn.utils.clip_grad_norm_ (including its 1e-6 guard in the divisor).

/** Scales the gradients in place so their joint L2 norm is at most maxNorm; returns the norm before clipping. maxNorm 0 turns clipping off. */
export function clipGradNorm(grads: Float32Array[], maxNorm: number): number {
  const norm = globalNorm(grads);
  // A non-finite norm is reported, not spread into every gradient; callers skip the step (see allFinite).
  if (maxNorm > 0 && Number.isFinite(norm)) {
    const coef = maxNorm / (norm + 1e-6);
    if (coef < 1) for (const g of grads) for (let i = 0; i < g.length; i++) g[i] *= coef;
  }
  return norm;
}

export function globalNorm(grads: Float32Array[]): number {
  let sum = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) sum += g[i] * g[i];
  return Math.sqrt(sum);
}

/** True when no value is NaN or infinite (a diverged step must not reach the adapter). */
export function allFinite(arrays: ArrayLike<number>[]): boolean {
  for (const a of arrays) for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return false;
  return true;
}

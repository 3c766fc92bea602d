// Reverse-mode autodiff over the tape that kernels/ops.ts records.

import { Value } from './graph';
import { add } from './ops';

/**
 * Emits d(loss)/d(param) for each param. `loss` must be a scalar, unless `seed`
 * (shaped like `loss`) is given: then the result is the vector-Jacobian product
 * seedᵀ·∂loss/∂param, the backward pass of a graph cut out of a larger one.
 * A param the loss does not depend on is an error: a silently missing gradient
 * trains nothing.
 */
export function grad(loss: Value, params: Value[], seed?: Value): Value[] {
  const g = loss.graph;
  const grads = new Map<string, Value>([[loss.name, seed ?? g.scalar(1, loss.type)]]);
  for (let i = g.tape.length - 1; i >= 0; i--) {
    const entry = g.tape[i];
    const gy = grads.get(entry.output.name);
    if (!gy) continue;
    const gxs = entry.backward(gy);
    entry.inputs.forEach((x, j) => {
      const gx = gxs[j];
      if (!gx || !x.requiresGrad) return;
      const prev = grads.get(x.name);
      grads.set(x.name, prev ? add(prev, gx) : gx);
    });
  }
  return params.map((p) => {
    const gp = grads.get(p.name);
    if (!gp) throw new Error(`autodiff: the loss does not depend on "${p.name}"`);
    return gp;
  });
}

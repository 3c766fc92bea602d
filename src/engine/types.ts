// The engine's public contract: what training, generation, the CLI and the
// worker call. Implemented by src/engine/engine.ts on top of kernels/. Its
// inputs are the adapter's weights (src/adapter/types.ts) and token batches
// (src/data/batches.ts).

/** Where the engine runs: 'auto' tries CUDA, then WebGPU, then the CPU. */
export const DEVICES = ['auto', 'cpu', 'webgpu', 'cuda'] as const;
export type Device = (typeof DEVICES)[number];

export function isDevice(value: unknown): value is Device {
  return (DEVICES as readonly unknown[]).includes(value);
}

/** One training step's loss, its gradients and the per-row sums of the scored targets' log-probabilities. */
export interface StepResult {
  loss: number;
  gradPrefix: Float32Array;
  gradGates: Float32Array;
  logps: Float32Array;
}

/** loss: the mean cross-entropy over all scored positions of the batch. */
export interface SftStepResult extends StepResult {
  targets: number;
}

/** Rows 0..P-1 of the batch are the chosen answers, rows P..2P-1 the rejected ones (same order); logps [2P]. */
export type DpoStepResult = StepResult;

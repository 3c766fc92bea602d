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

export interface SftStepResult {
  /** Mean cross-entropy over all scored positions of the batch. */
  loss: number;
  targets: number;
  gradPrefix: Float32Array;
  gradGates: Float32Array;
  /** Per row: sum of the log-probabilities of its scored targets. */
  logps: Float32Array;
}

/** Rows 0..P-1 of `batch` are the chosen answers, rows P..2P-1 the rejected ones (same order). */
export interface DpoStepResult {
  loss: number;
  gradPrefix: Float32Array;
  gradGates: Float32Array;
  /** [2P] policy log-probabilities, chosen then rejected. */
  logps: Float32Array;
}

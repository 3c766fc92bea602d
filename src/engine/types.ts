// The engine's public contract: what training, generation, the CLI and the
// worker call. Implemented by src/engine/engine.ts on top of kernels/.

/** Where the engine runs: 'auto' tries CUDA, then WebGPU, then the CPU. */
export type Device = 'auto' | 'cpu' | 'webgpu' | 'cuda';

/** The trainable parameters of one Aligner adapter (SPEC §2). */
export interface AdapterWeights {
  /** [tokens, hiddenSize], row-major. */
  prefix: Float32Array;
  /** [numLayers - startLayer, numHeads], row-major. */
  gates: Float32Array;
  tokens: number;
  startLayer: number;
}

/**
 * A right-padded batch of B rows of T tokens. `targets[b*T + t]` is the token that
 * position t must predict (the next token), and `mask[b*T + t]` is 1 where that
 * prediction is scored, 0 for prompt, padding and the last position.
 */
export interface TokenBatch {
  rows: number;
  length: number;
  inputIds: Int32Array;
  targets: Int32Array;
  mask: Uint8Array;
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

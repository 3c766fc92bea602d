// Host-side inputs of the graphs in kernels/graphs.ts: masks, rotary tables,
// target indices and the per-row adapter tensors. Pure functions of the
// batch, so every graph is fed, never rebuilt.

import * as ort from 'onnxruntime-node';
import { fitProblem, layoutOfWeights } from '../adapter/fit';
import type { ModelConfig } from '../model/types';
import { ropeTables } from './rope';
import type { AdapterWeights } from '../adapter/types';
import type { TokenBatch } from '../data/batches';

export type Feeds = Record<string, ort.Tensor>;

export const f32 = (data: Float32Array, dims: number[]) => new ort.Tensor('float32', data, dims);
export const i64 = (data: ArrayLike<number>, dims: number[]) => new ort.Tensor('int64', BigInt64Array.from(Array.from(data), BigInt), dims);
export const scalar = (x: number) => f32(Float32Array.of(x), []);

export function ropeFeeds(inv: Float64Array, positions: ArrayLike<number>, rows: number, length: number): Feeds {
  const { cos, sin } = ropeTables(inv, positions);
  const dims = [rows, length, 1, inv.length];
  return { rope_cos: f32(cos, dims), rope_sin: f32(sin, dims) };
}

/** Causal mask [R·T, T] for a batch without cache: query row r·T + t sees keys 0..t. */
export function causalBias(group: number, length: number): ort.Tensor {
  const bias = new Float32Array(group * length * length);
  for (let r = 0; r < group; r++) {
    for (let t = 0; t < length; t++) bias.fill(-Infinity, (r * length + t) * length + t + 1, (r * length + t + 1) * length);
  }
  return f32(bias, [group * length, length]);
}

/**
 * Mask [B, 1, R·T, P + T] for T new tokens after P cached positions: cached slot j
 * is visible when `valid[b·P + j]` (padding of shorter prompts is not), new token
 * j' is visible to new tokens t ≥ j'.
 */
export function cachedBias(group: number, rows: number, past: number, length: number, valid: Uint8Array): ort.Tensor {
  const S = past + length;
  const bias = new Float32Array(rows * group * length * S);
  for (let b = 0; b < rows; b++) {
    for (let r = 0; r < group; r++) {
      for (let t = 0; t < length; t++) {
        const at = ((b * group + r) * length + t) * S;
        for (let j = 0; j < past; j++) if (!valid[b * past + j]) bias[at + j] = -Infinity;
        bias.fill(-Infinity, at + past + t + 1, at + S);
      }
    }
  }
  return f32(bias, [rows, 1, group * length, S]);
}

/**
 * Targets scored in a batch: `positions` are flat indices r·T + t (the prediction made after token
 * t of row r), `ids` the token each is scored on. A position may appear more than once (several
 * tokens scored where one was predicted); `weights`, where given, weigh each target in the loss.
 */
export interface Targets {
  positions: number[];
  ids: number[];
  weights?: number[];
}

/** A batch's own targets: every masked position with its target token. */
export function maskTargets(batch: TokenBatch): Targets {
  const positions: number[] = [];
  for (let i = 0; i < batch.mask.length; i++) if (batch.mask[i]) positions.push(i);
  return { positions, ids: positions.map((p) => batch.targets[p]) };
}

/** Target indices, ids and the row one-hot [B, K] of `targets` in a batch of `rows` rows of `length`. */
export function targetFeeds(rows: number, length: number, targets: Targets): Feeds {
  const K = targets.positions.length;
  const oneHot = new Float32Array(rows * K);
  targets.positions.forEach((p, k) => (oneHot[Math.floor(p / length) * K + k] = 1));
  return {
    target_pos: i64(targets.positions, [K]),
    target_ids: i64(targets.ids, [K]),
    target_rows: f32(oneHot, [rows, K]),
  };
}

/** The engine's own check of weights it is handed, by the same rule as adapter files (adapter/fit.ts). */
export function checkAdapter(cfg: ModelConfig, a: AdapterWeights): void {
  const problem = fitProblem(layoutOfWeights(a, cfg.numHeads), { ...cfg, name: cfg.architecture }, 'adapter');
  if (problem) throw new Error(problem);
}

/** K_p/V_p of one adapter for every layer, [L, G, N, d_h] each. */
export interface PrefixKV {
  keys: Float32Array;
  values: Float32Array;
}

/**
 * Per-row adapter inputs of the step graph. Rows without an adapter get zero
 * keys, values and gates, so their branch adds exactly 0; prefix slots beyond
 * a row's N are masked (slot 0 never is, so no softmax row is all −∞).
 */
export function adapterFeeds(cfg: ModelConfig, adapters: (AdapterWeights | null)[], kv: (PrefixKV | null)[]): Feeds {
  const { numLayers: L, numKvHeads: G, headDim: dh, numHeads: H } = cfg;
  const B = adapters.length;
  const N = Math.max(1, ...adapters.map((a) => a?.tokens ?? 1));
  const keys = new Float32Array(L * B * G * N * dh);
  const values = new Float32Array(keys.length);
  const gates = new Float32Array(L * B * H);
  const bias = new Float32Array(B * N);
  adapters.forEach((a, b) => {
    if (!a) return;
    const own = kv[b]!;
    bias.fill(-Infinity, b * N + a.tokens, (b + 1) * N);
    for (let l = 0; l < L; l++) {
      for (let g = 0; g < G; g++) {
        const src = (l * G + g) * a.tokens * dh;
        const dst = ((l * B + b) * G + g) * N * dh;
        keys.set(own.keys.subarray(src, src + a.tokens * dh), dst);
        values.set(own.values.subarray(src, src + a.tokens * dh), dst);
      }
      if (l >= a.startLayer) gates.set(a.gates.subarray((l - a.startLayer) * H, (l - a.startLayer + 1) * H), (l * B + b) * H);
    }
  });
  return {
    prefix_keys: f32(keys, [L, B, G, N, dh]),
    prefix_values: f32(values, [L, B, G, N, dh]),
    gates: f32(gates, [L, B, H]),
    prefix_bias: f32(bias, [B, 1, 1, N]),
  };
}

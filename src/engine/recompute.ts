// A training pass that recomputes each layer's activations in the backward
// pass (activation checkpointing) and scores its targets in chunks, running the
// graphs of kernels/graphs.ts ("a recomputed training step") in turn. Its
// memory is the checkpoints ([B·T, d] per trained layer) plus one layer's
// activations and one chunk's [chunk × vocabulary] logits, instead of every
// layer's activations and all the logits at once; the price is one more
// forward pass through the trained layers.

import * as ort from 'onnxruntime-node';
import type { TrainMethod } from '../../kernels/graphs';
import type { AdapterWeights } from '../adapter/types';
import type { ModelConfig } from '../model/types';
import { f32, Feeds } from './feeds';

/** The sessions of a recomputed pass, built on first use (src/engine/engine.ts). */
export interface RecomputeSessions {
  forward(startLayer: number): Promise<ort.InferenceSession>;
  head(): Promise<ort.InferenceSession>;
  loss(method: TrainMethod): Promise<ort.InferenceSession>;
  layer(layer: number): Promise<ort.InferenceSession>;
}

/** What one training pass gives, recomputed or not. */
export interface PassOutputs {
  loss: number;
  gradPrefix: Float32Array;
  gradGates: Float32Array;
  /** Per-row sequence log-probabilities. */
  logps: Float32Array;
}

/**
 * One pass of `method` over the rows in `feeds` (the inputs of the one-graph
 * training step: ids, rotary tables, mask, prefix, gates, targets and the
 * loss's inputs), `chunk` targets at a time through the LM head.
 */
export async function recomputedPass(
  sessions: RecomputeSessions,
  cfg: ModelConfig,
  method: TrainMethod,
  a: AdapterWeights,
  feeds: Feeds,
  chunk: number,
): Promise<PassOutputs> {
  const { hiddenSize: d, numLayers: L, numHeads: H } = cfg;
  const [B, T] = feeds.input_ids.dims;

  // 1. Forward without gradients: the checkpoints and the scored rows' final hidden states.
  const forward = await sessions.forward(a.startLayer);
  const checkpoints = await forward.run(pick(feeds, forward));
  const hidden = checkpoints.target_hidden.data as Float32Array;
  const ids = feeds.target_ids.data as BigInt64Array;
  const K = ids.length;

  // 2. Per chunk of targets: log p(target) and d log p(target) / d hidden row (a row of the Jacobian).
  const head = await sessions.head();
  const tokenLogps = new Float32Array(K);
  const jacobian = new Float32Array(K * d);
  for (let start = 0; start < K; start += chunk) {
    const end = Math.min(K, start + chunk);
    const out = await head.run({
      target_hidden: f32(hidden.slice(start * d, end * d), [end - start, d]),
      target_ids: new ort.Tensor('int64', ids.slice(start, end), [end - start]),
    });
    tokenLogps.set(out.token_logps.data as Float32Array, start);
    jacobian.set(out.grad_target_hidden.data as Float32Array, start * d);
  }

  // 3. The loss and its gradient per target; by the chain rule the final hidden
  //    row at target k's position gets d loss / d log p(target_k) · Jacobian row k.
  const lossSession = await sessions.loss(method);
  const loss = await lossSession.run(pick({ ...feeds, token_logps: f32(tokenLogps, [K]) }, lossSession));
  const perTarget = loss.grad_token_logps.data as Float32Array;
  const positions = feeds.target_pos.data as BigInt64Array;
  let gradHidden: Float32Array = new Float32Array(B * T * d);
  for (let k = 0; k < K; k++) {
    const at = Number(positions[k]) * d;
    for (let i = 0; i < d; i++) gradHidden[at + i] += perTarget[k] * jacobian[k * d + i]; // a position may hold several targets
  }

  // 4. Backward from the last layer to the start layer, each layer recomputed from its checkpoint.
  const gradPrefix = new Float32Array(a.prefix.length);
  const gradGates = new Float32Array(a.gates.length);
  for (let l = L - 1; l >= a.startLayer; l--) {
    const row = (l - a.startLayer) * H;
    const layer = await sessions.layer(l);
    const out = await layer.run(
      pick(
        {
          ...feeds,
          layer_input: checkpoints[`layer_input_${l}`],
          grad_output: f32(gradHidden, [B * T, d]),
          gates: f32(a.gates.slice(row, row + H), [H]),
        },
        layer,
      ),
    );
    (out.grad_prefix.data as Float32Array).forEach((g, i) => (gradPrefix[i] += g));
    gradGates.set(out.grad_gates.data as Float32Array, row);
    gradHidden = out.grad_input.data as Float32Array;
  }
  return {
    loss: (loss.loss.data as Float32Array)[0],
    gradPrefix,
    gradGates,
    logps: loss.logps.data as Float32Array,
  };
}

/** The feeds a session takes, of a bag that holds more. */
function pick(feeds: Feeds, session: ort.InferenceSession): Feeds {
  return Object.fromEntries(session.inputNames.map((name) => [name, feeds[name]]));
}

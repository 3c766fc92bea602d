// The graphs the engine runs. Each is built once per model (training graphs
// once per start layer) and fed different adapters, prompts and batch shapes
// through its inputs, so nothing is rebuilt when those change.

import type { DecoderConfig } from './config';
import { grad } from './autodiff';
import { Dim, Graph, Value } from './graph';
import { LayerBranch, Llama, WeightIndex } from './llama';
import { chunkedRows, gatherRows, inChunks, matmul, mul, reshape, row, scale, softplus, sub, sum, tokenLogProb } from './ops';

/** Inputs shared by every decoder pass: ids, rotary tables, attention mask. */
function decoderInputs(g: Graph, cfg: DecoderConfig, bias: Dim[]) {
  const half = cfg.headDim / 2;
  return {
    ids: g.input('input_ids', 'int64', ['batch', 'seq']),
    cos: g.input('rope_cos', g.float, ['batch', 'seq', 1, half]),
    sin: g.input('rope_sin', g.float, ['batch', 'seq', 1, half]),
    attnBias: g.input('attn_bias', g.float, bias),
  };
}

/**
 * log p(target) at the scored positions `target_pos` [K] (flat b·T + t) of the hidden [B·T, d],
 * `chunk` targets at a time (inChunks): only one chunk's [chunk × vocabulary] logits exist at once.
 * No gradient (scoring); a training step uses chunkedTargetLogProbs.
 */
function targetLogProbs(g: Graph, model: Llama, hidden: Value, chunk: number): Value {
  const positions = g.input('target_pos', 'int64', ['targets']);
  const ids = g.input('target_ids', 'int64', ['targets']);
  return inChunks([gatherRows(hidden, positions), ids], chunk, ([rows, chunkIds]) => [
    tokenLogProb(model.in(rows.graph).head(rows), chunkIds),
  ])[0];
}

/**
 * log p(target) of final hidden rows [C, d] (before the final norm) and the gradient of each with
 * respect to its own row, [C, d]: each log-prob depends on its own row only, so one backward pass
 * gives every row of the Jacobian.
 */
function headLogProbs(model: Llama, rows: Value, ids: Value): { y: Value; jacobian: Value } {
  const y = tokenLogProb(model.head(rows), ids);
  return { y, jacobian: grad(sum(y), [rows])[0] };
}

/**
 * targetLogProbs for a training step, `chunk` targets at a time (chunkedRows): only one chunk's
 * [chunk × vocabulary] logits exist at once, and the head's VJP is the chunks' Jacobian rows.
 */
function chunkedTargetLogProbs(g: Graph, model: Llama, hidden: Value, chunk: number): Value {
  const positions = g.input('target_pos', 'int64', ['targets']);
  const ids = g.input('target_ids', 'int64', ['targets']);
  return chunkedRows(gatherRows(hidden, positions), ids, chunk, (rows, chunkIds) => headLogProbs(model.in(rows.graph), rows, chunkIds));
}

/** The adapter as trainable inputs: prefix [N, d] and gates [L − s, H], broadcast over the batch. */
function trainableAdapter(g: Graph, model: Llama, cfg: DecoderConfig, startLayer: number) {
  const prefix = g.input('prefix', g.float, ['tokens', cfg.hiddenSize], true);
  const gates = g.input('gates', g.float, [cfg.numLayers - startLayer, cfg.numHeads], true);
  const branch = (l: number): LayerBranch | null =>
    l < startLayer ? null : { ...model.prefixKV(prefix, l), gates: gateHeads(model, row(gates, l - startLayer)) };
  return { prefix, gates, branch };
}

/** One layer's gates [H] as [1, G, H/G, 1, 1], the layout LayerBranch wants. */
function gateHeads(model: Llama, gates: Value): Value {
  const shape = [1, model.kvHeads, model.group, 1, 1];
  return reshape(gates, shape, shape);
}

export type TrainMethod = 'sft' | 'dpo';

/**
 * The loss of a training step from the scored targets' log-probabilities [K].
 * SFT: loss = −Σ weight·log p(target) (the mean when each weight is 1/count). DPO: rows 0..P−1 chosen, P..2P−1 rejected;
 * `pairs` [P, 2P] holds +1/−1 so that pairs·(π − π_ref) is the per-pair margin,
 * loss = mean softplus(−β·margin). Also the per-row sequence log-probabilities.
 */
function stepLoss(g: Graph, tokenLogps: Value, method: TrainMethod): { loss: Value; seqLogps: Value } {
  // rows [B, K]: 1 where target k belongs to row b; turns token log-probs into sequence log-probs.
  const rows = g.input('target_rows', g.float, ['batch', 'targets']);
  const seqLogps = reshape(matmul(rows, reshape(tokenLogps, [-1, 1], ['targets', 1])), [-1], ['batch']);
  if (method === 'sft') {
    // SFT: weights 1/count, the token mean; other weightings serve a refinement (src/train/corrections.ts).
    const weights = g.input('target_weights', g.float, ['targets']);
    return { loss: scale(sum(mul(tokenLogps, weights)), -1), seqLogps };
  }
  const refLogps = g.input('ref_logps', g.float, ['batch']);
  const pairs = g.input('pairs', g.float, ['pairs', 'batch']);
  const beta = g.input('beta', g.float, []);
  const invPairs = g.input('inv_pairs', g.float, []);
  const delta = reshape(sub(seqLogps, refLogps), [-1, 1], ['batch', 1]);
  const z = mul(matmul(pairs, delta), beta);
  return { loss: mul(sum(softplus(scale(z, -1))), invPairs), seqLogps };
}

/**
 * One training step in one graph (see stepLoss): outputs loss, the gradients
 * of prefix and gates, and per-row sequence log-probabilities. The targets go
 * through the LM head `chunk` at a time (chunkedTargetLogProbs), but every
 * layer's activations stay alive until the backward pass uses them; kernels'
 * recomputed step (the graphs below) bounds that too.
 */
export function trainGraph(cfg: DecoderConfig, index: WeightIndex, startLayer: number, method: TrainMethod, chunk: number): Graph {
  const g = new Graph();
  const model = new Llama(g, cfg, index);
  const inp = decoderInputs(g, cfg, [`${model.group}*seq`, 'seq']);
  const adapter = trainableAdapter(g, model, cfg, startLayer);
  const { hidden } = model.decoder(inp, adapter.branch);
  const { loss, seqLogps } = stepLoss(g, chunkedTargetLogProbs(g, model, hidden, chunk), method);
  const [gPrefix, gGates] = grad(loss, [adapter.prefix, adapter.gates]);
  g.output(loss, 'loss');
  g.output(gPrefix, 'grad_prefix');
  g.output(gGates, 'grad_gates');
  g.output(seqLogps, 'logps');
  return g;
}

// ---- a recomputed training step ----
//
// The same step as trainGraph, cut into graphs that the engine runs one after
// another (src/engine/recompute.ts), so that no run holds more than one
// layer's activations or one chunk of [targets × vocabulary] logits:
//   1. forwardGraph: the decoder without gradients; keeps only the residual
//      stream entering each trained layer (the checkpoints) and the final
//      hidden rows of the scored targets.
//   2. headGraph, per chunk of targets: log p(target) and its gradient with
//      respect to the target's hidden row (each log-prob depends on its own row
//      only, so one backward pass gives every row of the Jacobian).
//   3. lossGraph: the loss and d loss / d log p(target) per target.
//   4. layerBackwardGraph, from the last layer down to the start layer:
//      recomputes the layer from its checkpoint and returns the gradient of its
//      input, the prefix and its gates.

/** Step 1: outputs `layer_input_l` [B·T, d] for l ≥ startLayer and `target_hidden` [K, d]. */
export function forwardGraph(cfg: DecoderConfig, index: WeightIndex, startLayer: number): Graph {
  const g = new Graph();
  const model = new Llama(g, cfg, index);
  const inp = decoderInputs(g, cfg, [`${model.group}*seq`, 'seq']);
  const adapter = trainableAdapter(g, model, cfg, startLayer);
  const { hidden, layerInputs } = model.decoder(inp, adapter.branch);
  for (let l = startLayer; l < cfg.numLayers; l++) g.output(layerInputs[l], `layer_input_${l}`);
  g.output(gatherRows(hidden, g.input('target_pos', 'int64', ['targets'])), 'target_hidden');
  return g;
}

/** Step 2: `token_logps` [C] and `grad_target_hidden` [C, d] = d log p(target_c) / d target_hidden_c. */
export function headGraph(cfg: DecoderConfig, index: WeightIndex): Graph {
  const g = new Graph();
  const model = new Llama(g, cfg, index);
  const rows = g.input('target_hidden', g.float, ['targets', cfg.hiddenSize], true);
  const { y, jacobian } = headLogProbs(model, rows, g.input('target_ids', 'int64', ['targets']));
  g.output(y, 'token_logps');
  g.output(jacobian, 'grad_target_hidden');
  return g;
}

/** Step 3: `loss`, `grad_token_logps` [K] and the sequence log-probabilities `logps` [B]. */
export function lossGraph(method: TrainMethod): Graph {
  const g = new Graph();
  const tokenLogps = g.input('token_logps', g.float, ['targets'], true);
  const { loss, seqLogps } = stepLoss(g, tokenLogps, method);
  g.output(loss, 'loss');
  g.output(grad(loss, [tokenLogps])[0], 'grad_token_logps');
  g.output(seqLogps, 'logps');
  return g;
}

/**
 * Step 4 for layer l (≥ the start layer): from the layer's input `layer_input`
 * [B·T, d] and the gradient of its output `grad_output`, the gradients
 * `grad_input`, `grad_prefix` [N, d] and `grad_gates` [H] of this layer's gates.
 * Independent of the start layer, so every start layer shares it.
 */
export function layerBackwardGraph(cfg: DecoderConfig, index: WeightIndex, layer: number): Graph {
  const g = new Graph();
  const model = new Llama(g, cfg, index);
  // The ids only give the layer its run-time [B, T], as in the decoder.
  const inp = decoderInputs(g, cfg, [`${model.group}*seq`, 'seq']);
  const x = g.input('layer_input', g.float, ['batch*seq', cfg.hiddenSize], true);
  const gy = g.input('grad_output', g.float, ['batch*seq', cfg.hiddenSize]);
  const prefix = g.input('prefix', g.float, ['tokens', cfg.hiddenSize], true);
  const gates = g.input('gates', g.float, [cfg.numHeads], true);
  const bt = g.node('Shape', [inp.ids], {}, [2], 'int64');
  const branch = { ...model.prefixKV(prefix, layer), gates: gateHeads(model, gates) };
  const { hidden } = model.layer(x, layer, inp, bt, branch);
  const [gx, gPrefix, gGates] = grad(hidden, [x, prefix, gates], gy);
  g.output(gx, 'grad_input');
  g.output(gPrefix, 'grad_prefix');
  g.output(gGates, 'grad_gates');
  return g;
}

/**
 * Prefill and decode in one graph: T new tokens per row on top of a key/value
 * cache of C slots (C = 0 for a prefill), every row with its own adapter or none
 * (see perRowAdapters). Logits are computed only at `logit_pos` [K] (flat row
 * index b·T + t). The graph reads the cache in place and returns only the new
 * tokens' keys and values (`new_key_l`, `new_value_l` [B, G, T, d_h]), which the
 * engine writes into its preallocated cache: no step copies the whole cache.
 */
export function stepGraph(cfg: DecoderConfig, index: WeightIndex): Graph {
  const g = new Graph();
  const model = new Llama(g, cfg, index);
  const G = model.kvHeads;
  const inp = decoderInputs(g, cfg, ['batch', 1, `${model.group}*seq`, 'C+seq']);
  const past = { keys: [] as Value[], values: [] as Value[] };
  for (let l = 0; l < cfg.numLayers; l++) {
    past.keys.push(g.input(`cache_key_${l}`, g.float, ['batch', G, 'C', cfg.headDim]));
    past.values.push(g.input(`cache_value_${l}`, g.float, ['batch', G, 'C', cfg.headDim]));
  }
  const logitPos = g.input('logit_pos', 'int64', ['positions']);
  const { hidden, present } = model.decoder({ ...inp, past }, perRowAdapters(g, model, cfg));
  g.output(model.logitsAt(hidden, logitPos), 'logits');
  present!.keys.forEach((k, l) => g.output(k, `new_key_${l}`));
  present!.values.forEach((v, l) => g.output(v, `new_value_${l}`));
  return g;
}

/**
 * Log-probabilities of scored targets without gradients (evaluation, DPO
 * reference), per-row adapters as in stepGraph: the targets go through the
 * head `chunk` at a time inside onnxruntime, and only K numbers come back.
 */
export function scoreGraph(cfg: DecoderConfig, index: WeightIndex, chunk: number): Graph {
  const g = new Graph();
  const model = new Llama(g, cfg, index);
  // Right padding needs no mask beyond the causal one: real positions never see it.
  const inp = decoderInputs(g, cfg, [`${model.group}*seq`, 'seq']);
  const { hidden } = model.decoder(inp, perRowAdapters(g, model, cfg));
  g.output(targetLogProbs(g, model, hidden, chunk), 'token_logps');
  return g;
}

/**
 * Adapter inputs for every layer and row: prefix keys/values [L, B, G, N, d_h]
 * (zeros and gate 0 for rows or layers without one), gates [L, B, H], and an
 * additive prefix mask [B, 1, 1, N] for rows with fewer prefix vectors.
 */
function perRowAdapters(g: Graph, model: Llama, cfg: DecoderConfig): (layer: number) => LayerBranch {
  const G = model.kvHeads;
  const prefixKeys = g.input('prefix_keys', g.float, [cfg.numLayers, 'batch', G, 'tokens', cfg.headDim]);
  const prefixValues = g.input('prefix_values', g.float, [cfg.numLayers, 'batch', G, 'tokens', cfg.headDim]);
  const gates = g.input('gates', g.float, [cfg.numLayers, 'batch', cfg.numHeads]);
  const prefixBias = g.input('prefix_bias', g.float, ['batch', 1, 1, 'tokens']);
  const layerOf = (x: Value, l: number) => g.node('Gather', [x, g.constant([l], [], 'int64')], { axis: 0 }, x.shape.slice(1), g.float);
  return (l) => ({
    keys: layerOf(prefixKeys, l),
    values: layerOf(prefixValues, l),
    gates: g.node('Reshape', [layerOf(gates, l), g.ints([0, G, model.group, 1, 1])], {}, ['batch', G, model.group, 1, 1], g.float),
    bias: prefixBias,
  });
}

/** K_p and V_p of one adapter for every layer, [L, G, N, d_h]: computed once per adapter, not per token. */
export function prefixGraph(cfg: DecoderConfig, index: WeightIndex): Graph {
  const g = new Graph();
  const model = new Llama(g, cfg, index);
  const prefix = g.input('prefix', g.float, ['tokens', cfg.hiddenSize]);
  const keys: Value[] = [];
  const values: Value[] = [];
  for (let l = 0; l < cfg.numLayers; l++) {
    const kv = model.prefixKV(prefix, l);
    keys.push(kv.keys);
    values.push(kv.values);
  }
  const stack = (xs: Value[], name: string) =>
    g.output(g.node('Concat', xs, { axis: 0 }, [cfg.numLayers, model.kvHeads, 'tokens', cfg.headDim], g.float), name);
  stack(keys, 'keys');
  stack(values, 'values');
  return g;
}

// The graphs the engine runs. Each is built once per model (training graphs
// once per start layer) and fed different adapters, prompts and batch shapes
// through its inputs, so nothing is rebuilt when those change.

import type { DecoderConfig } from './config';
import { grad } from './autodiff';
import { Dim, Graph, Value } from './graph';
import { LayerBranch, Llama, WeightIndex } from './llama';
import { matmul, mul, reshape, row, scale, softplus, sub, sum, tokenLogProb } from './ops';

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

/** log p(target) at the scored positions `target_pos` [K] (flat b·T + t) of the hidden [B·T, d]. */
function targetLogProbs(g: Graph, model: Llama, hidden: Value): Value {
  const positions = g.input('target_pos', 'int64', ['targets']);
  const ids = g.input('target_ids', 'int64', ['targets']);
  return tokenLogProb(model.logitsAt(hidden, positions), ids);
}

/** The adapter as trainable inputs: prefix [N, d] and gates [L − s, H], broadcast over the batch. */
function trainableAdapter(g: Graph, model: Llama, cfg: DecoderConfig, startLayer: number) {
  const prefix = g.input('prefix', g.float, ['tokens', cfg.hiddenSize], true);
  const gates = g.input('gates', g.float, [cfg.numLayers - startLayer, cfg.numHeads], true);
  const branch = (l: number): LayerBranch | null => {
    if (l < startLayer) return null;
    const perHead = reshape(row(gates, l - startLayer), [1, model.kvHeads, model.group, 1, 1], [1, model.kvHeads, model.group, 1, 1]);
    return { ...model.prefixKV(prefix, l), gates: perHead };
  };
  return { prefix, gates, branch };
}

export type TrainMethod = 'sft' | 'dpo';

/**
 * One training step. SFT: loss = −mean log p(target). DPO: rows 0..P−1 chosen,
 * P..2P−1 rejected; `pairs` [P, 2P] holds +1/−1 so that pairs·(π − π_ref) is the
 * per-pair margin, loss = mean softplus(−β·margin). Outputs loss, the gradients
 * of prefix and gates, and per-row sequence log-probabilities.
 */
export function trainGraph(cfg: DecoderConfig, index: WeightIndex, startLayer: number, method: TrainMethod): Graph {
  const g = new Graph();
  const model = new Llama(g, cfg, index);
  const inp = decoderInputs(g, cfg, [`${model.group}*seq`, 'seq']);
  const adapter = trainableAdapter(g, model, cfg, startLayer);
  const { hidden } = model.decoder(inp, adapter.branch);
  const tokenLogps = targetLogProbs(g, model, hidden);
  // rows [B, K]: 1 where target k belongs to row b; turns token log-probs into sequence log-probs.
  const rows = g.input('target_rows', g.float, ['batch', 'targets']);
  const seqLogps = reshape(matmul(rows, reshape(tokenLogps, [-1, 1], ['targets', 1])), [-1], ['batch']);
  let loss: Value;
  if (method === 'sft') {
    const invCount = g.input('inv_count', g.float, []);
    loss = mul(scale(sum(tokenLogps), -1), invCount);
  } else {
    const refLogps = g.input('ref_logps', g.float, ['batch']);
    const pairs = g.input('pairs', g.float, ['pairs', 'batch']);
    const beta = g.input('beta', g.float, []);
    const invPairs = g.input('inv_pairs', g.float, []);
    const delta = reshape(sub(seqLogps, refLogps), [-1, 1], ['batch', 1]);
    const z = mul(matmul(pairs, delta), beta);
    loss = mul(sum(softplus(scale(z, -1))), invPairs);
  }
  const [gPrefix, gGates] = grad(loss, [adapter.prefix, adapter.gates]);
  g.output(loss, 'loss');
  g.output(gPrefix, 'grad_prefix');
  g.output(gGates, 'grad_gates');
  g.output(seqLogps, 'logps');
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
 * reference), per-row adapters as in stepGraph: the [K, V] logits stay inside
 * onnxruntime and only K numbers come back.
 */
export function scoreGraph(cfg: DecoderConfig, index: WeightIndex): Graph {
  const g = new Graph();
  const model = new Llama(g, cfg, index);
  // Right padding needs no mask beyond the causal one: real positions never see it.
  const inp = decoderInputs(g, cfg, [`${model.group}*seq`, 'seq']);
  const { hidden } = model.decoder(inp, perRowAdapters(g, model, cfg));
  g.output(targetLogProbs(g, model, hidden), 'token_logps');
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

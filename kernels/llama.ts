// The Llama-family decoder (Llama, Mistral, Qwen2) with the Aligner branch of
// SPEC §2, written once and used by the training, prefill/decode and scoring
// graphs. Activations run as [B·T, d] rows so every projection is one Gemm
// against the frozen [out, in] weight.

import type { DecoderConfig } from './config';
import { Dim, Graph, Value } from './graph';
import {
  add,
  gatherRows,
  linear,
  matmul,
  mul,
  NBitsMatrix,
  QuantizedLinear,
  reshape,
  rmsNorm,
  rope,
  scale,
  silu,
  softmax,
  transpose,
} from './ops';

/** Where each frozen weight sits in the shared external-data file. */
export interface WeightIndex {
  /** `blockSize`: weights per block of a quantized matrix's data entry (nbitsEntries' data and transposedData). */
  get(name: string): { shape: number[]; offset: number; type?: 'float' | 'uint8'; blockSize?: number };
  has(name: string): boolean;
  /**
   * Set when the linear layers are quantized: a quantized W [out, in] is stored as
   * the entries named by nbitsEntries(W) (the float32 W stays only where a Gather needs it).
   */
  nbits?: { accuracyLevel: number };
}

/** The weights-file entries of a quantized matrix W and of its separately quantized transpose. */
export function nbitsEntries(name: string) {
  return {
    data: `${name}.nbits`,
    scales: `${name}.scales`,
    zeroPoints: `${name}.zeros`,
    mins: `${name}.mins`,
    transposedData: `${name}.t.nbits`,
    transposedScales: `${name}.t.scales`,
    transposedZeroPoints: `${name}.t.zeros`,
  };
}

/** The Aligner branch of one layer: prefix keys/values and the per-head gates. */
export interface LayerBranch {
  /** [Bp, G, N, d_h] with Bp = 1 (shared adapter) or B (one adapter per row). */
  keys: Value;
  values: Value;
  /** [Bp, G, H/G, 1, 1]: gate of query head h = g·(H/G) + r. */
  gates: Value;
  /** Optional additive mask [Bp, 1, 1, N] for padded prefix slots. */
  bias?: Value;
}

export interface DecoderInputs {
  /** [B, T] int64 token ids. */
  ids: Value;
  /** [B, T, 1, d_h/2] rotary tables for each row's positions. */
  cos: Value;
  sin: Value;
  /**
   * Additive attention mask broadcastable to [B, G, R·T, S] (causal + padding):
   * S = T without cache, S = C + T with a cache of C slots (slots the cache does
   * not hold yet are masked like padding).
   */
  attnBias: Value;
  /**
   * The key/value cache per layer, [B, G, C, d_h]: C preallocated slots, read in
   * place (never concatenated with the new tokens); absent for a pass without cache.
   */
  past?: { keys: Value[]; values: Value[] };
}

export interface DecoderOutputs {
  /** Final residual stream [B·T, d], before the final norm. */
  hidden: Value;
  /** Keys/values of this pass's T tokens, [B, G, T, d_h] per layer (only with `past`): the caller writes them into its cache. */
  present?: { keys: Value[]; values: Value[] };
  /** The residual stream entering each layer, [B·T, d]: the checkpoints of a recomputed backward pass. */
  layerInputs: Value[];
}

export class Llama {
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  /** Query heads per key/value head. */
  readonly group: number;

  constructor(
    readonly g: Graph,
    readonly cfg: DecoderConfig,
    private readonly index: WeightIndex,
  ) {
    this.heads = cfg.numHeads;
    this.kvHeads = cfg.numKvHeads;
    this.headDim = cfg.headDim;
    this.group = cfg.numHeads / cfg.numKvHeads;
  }

  /** The same model in another graph (a Scan's body). */
  in(g: Graph): Llama {
    return new Llama(g, this.cfg, this.index);
  }

  w(name: string): Value {
    const { shape, offset, type } = this.index.get(name);
    return this.g.weight(name, shape, offset, type);
  }

  /** The weight of a linear layer: quantized when the weights file holds it so, else float32. */
  private lin(name: string): Value | QuantizedLinear {
    const q = this.index.nbits;
    const e = nbitsEntries(name);
    if (!q || !this.index.has(e.data)) return this.w(name);
    // W [rows, cols] is stored as [rows, blocks, bytes] and Wᵀ as [cols, blocks, bytes].
    const rows = this.index.get(e.data).shape[0];
    const cols = this.index.get(e.transposedData).shape[0];
    const matrix = (data: string, scales: string, zeros: string, n: number, k: number, mins?: string): NBitsMatrix => {
      // Bits and block size differ by layer (mapped GGUF blocks keep their own); the blocks' byte width gives the bits.
      const { shape, blockSize } = this.index.get(data);
      if (blockSize === undefined) throw new Error(`weights entry ${data} has no block size`);
      return {
        data: this.w(data),
        scales: this.w(scales),
        zeroPoints: this.maybe(zeros),
        mins: mins === undefined ? undefined : this.maybe(mins),
        bits: ((shape[2] * 8) / blockSize) as 4 | 8,
        blockSize,
        rows: n,
        cols: k,
      };
    };
    return {
      weight: matrix(e.data, e.scales, e.zeroPoints, rows, cols, e.mins),
      transposed: () => matrix(e.transposedData, e.transposedScales, e.transposedZeroPoints, cols, rows),
      accuracyLevel: q.accuracyLevel,
    };
  }

  private maybe(name: string): Value | undefined {
    return this.index.has(name) ? this.w(name) : undefined;
  }

  /** K_p = P W_kᵀ (+ b_k), V_p likewise: the layer's own projections, no norm and no rotary (SPEC §2.1). */
  prefixKV(prefix: Value, layer: number): { keys: Value; values: Value } {
    const at = `model.layers.${layer}.self_attn`;
    const project = (w: string, b: string) => {
      const rows = linear(prefix, this.lin(`${at}.${w}.weight`), this.maybe(`${at}.${b}.bias`));
      const split = reshape(rows, [1, -1, this.kvHeads, this.headDim], [1, prefix.shape[0], this.kvHeads, this.headDim]);
      return transpose(split, [0, 2, 1, 3]);
    };
    return { keys: project('k_proj', 'k_proj'), values: project('v_proj', 'v_proj') };
  }

  decoder(inp: DecoderInputs, branch: (layer: number) => LayerBranch | null): DecoderOutputs {
    const { g, cfg } = this;
    const bt = g.node('Shape', [inp.ids], {}, [2], 'int64');
    const [B, T] = inp.ids.shape;
    const embedded = g.node('Gather', [this.w('model.embed_tokens.weight'), inp.ids], { axis: 0 }, [B, T, cfg.hiddenSize], g.float);
    let x = reshape(embedded, [-1, cfg.hiddenSize], [rowsDim(B, T), cfg.hiddenSize]);
    const present = inp.past ? { keys: [] as Value[], values: [] as Value[] } : undefined;
    const layerInputs: Value[] = [];
    for (let l = 0; l < cfg.numLayers; l++) {
      layerInputs.push(x);
      const past = inp.past ? { keys: inp.past.keys[l], values: inp.past.values[l] } : undefined;
      const out = this.layer(x, l, inp, bt, branch(l), past);
      if (present && out.present) {
        present.keys.push(out.present.keys);
        present.values.push(out.present.values);
      }
      x = out.hidden;
    }
    return { hidden: x, present, layerInputs };
  }

  /**
   * One decoder layer on the residual stream x [B·T, d]: attention (with the
   * Aligner branch) then the MLP, each pre-normed and added back. `bt` is the
   * run-time [B, T] of `inp.ids`.
   */
  layer(
    x: Value,
    l: number,
    inp: DecoderInputs,
    bt: Value,
    branch: LayerBranch | null,
    past?: { keys: Value; values: Value },
  ): { hidden: Value; present?: { keys: Value; values: Value } } {
    const { cfg } = this;
    const at = `model.layers.${l}`;
    const normed = rmsNorm(x, this.w(`${at}.input_layernorm.weight`), cfg.rmsNormEps);
    const attn = this.attention(normed, l, inp, bt, past, branch);
    const h = add(x, attn.out);
    const normed2 = rmsNorm(h, this.w(`${at}.post_attention_layernorm.weight`), cfg.rmsNormEps);
    return { hidden: add(h, this.mlp(normed2, l)), present: attn.present };
  }

  /** Logits [K, V] for hidden rows [K, d]: final norm, then the (tied or untied) head. */
  head(rows: Value): Value {
    const normed = rmsNorm(rows, this.w('model.norm.weight'), this.cfg.rmsNormEps);
    const head = this.cfg.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
    return linear(normed, this.lin(head));
  }

  /** Logits at the flat row positions `index` [K] of the hidden [B·T, d]. */
  logitsAt(hidden: Value, index: Value): Value {
    return this.head(gatherRows(hidden, index));
  }

  private mlp(x: Value, layer: number): Value {
    const at = `model.layers.${layer}.mlp`;
    const gate = silu(linear(x, this.lin(`${at}.gate_proj.weight`)));
    const up = linear(x, this.lin(`${at}.up_proj.weight`));
    return linear(mul(gate, up), this.lin(`${at}.down_proj.weight`));
  }

  private attention(
    x: Value,
    layer: number,
    inp: DecoderInputs,
    bt: Value,
    past: { keys: Value; values: Value } | undefined,
    branch: LayerBranch | null,
  ): { out: Value; present?: { keys: Value; values: Value } } {
    const { g, cfg, heads, kvHeads, headDim, group } = this;
    const [B, T] = inp.ids.shape;
    const at = `model.layers.${layer}.self_attn`;
    const split = (rows: Value, n: number) =>
      reshape(rows, g.node('Concat', [bt, g.ints([n, headDim])], { axis: 0 }, [4], 'int64'), [B, T, n, headDim]);
    const proj = (name: string, n: number) => split(linear(x, this.lin(`${at}.${name}.weight`), this.maybe(`${at}.${name}.bias`)), n);

    // Queries: [B, T, H, d_h] → [B, G, R·T, d_h], heads of one kv group side by side.
    const q = rope(proj('q_proj', heads), inp.cos, inp.sin, cfg.ropeLayout);
    const qg = scale(
      reshape(transpose(q, [0, 2, 1, 3]), [0, kvHeads, -1, headDim], [B, kvHeads, `${group}*${T}`, headDim]),
      1 / Math.sqrt(headDim),
    );
    const keys = transpose(rope(proj('k_proj', kvHeads), inp.cos, inp.sin, cfg.ropeLayout), [0, 2, 1, 3]);
    const values = transpose(proj('v_proj', kvHeads), [0, 2, 1, 3]);
    let out = past
      ? this.cachedAttention(qg, keys, values, past, inp.attnBias)
      : matmul(softmax(add(matmul(qg, transpose(keys, [0, 1, 3, 2])), inp.attnBias)), values);
    if (branch) out = add(out, this.alignerBranch(qg, branch, B, T));

    const merged = reshape(
      transpose(reshape(out, [0, heads, -1, headDim], [B, heads, T, headDim]), [0, 2, 1, 3]),
      [-1, heads * headDim],
      [rowsDim(B, T), heads * headDim],
    );
    return { out: linear(merged, this.lin(`${at}.o_proj.weight`)), present: past ? { keys, values } : undefined };
  }

  /**
   * Attention over the cache's C slots and the T new tokens without joining them:
   * one softmax over the scores [B, G, R·T, C + T], then its two parts times the
   * cached and the new values. Nothing of size C is copied, so a decode step costs
   * the reads of attention only (the caller keeps C close to the cached length).
   */
  private cachedAttention(qg: Value, keys: Value, values: Value, cache: { keys: Value; values: Value }, bias: Value): Value {
    const g = this.g;
    const [B, G, RT] = qg.shape;
    const T = keys.shape[2];
    const C = cache.keys.shape[2];
    const onCache = matmul(qg, transpose(cache.keys, [0, 1, 3, 2]));
    const onNew = matmul(qg, transpose(keys, [0, 1, 3, 2]));
    const scores = g.node('Concat', [onCache, onNew], { axis: 3 }, [B, G, RT, `${C}+${T}`], g.float);
    const p = softmax(add(scores, bias));
    const slots = g.node('Slice', [g.node('Shape', [cache.keys], {}, [4], 'int64'), g.ints([2]), g.ints([3])], {}, [1], 'int64');
    const axis = g.ints([3]);
    const pCache = g.node('Slice', [p, g.ints([0]), slots, axis], {}, [B, G, RT, C], g.float);
    const pNew = g.node('Slice', [p, slots, g.ints([Number.MAX_SAFE_INTEGER]), axis], {}, [B, G, RT, T], g.float);
    return add(matmul(pCache, cache.values), matmul(pNew, values));
  }

  /** gates[h] · softmax_j(q·K_p[j] / √d_h) V_p: its own softmax over the N prefix slots, no causal mask. */
  private alignerBranch(qg: Value, branch: LayerBranch, B: Dim, T: Dim): Value {
    const { kvHeads, headDim, group } = this;
    let scores = matmul(qg, transpose(branch.keys, [0, 1, 3, 2]));
    if (branch.bias) scores = add(scores, branch.bias);
    const mixed = matmul(softmax(scores), branch.values);
    const perHead = reshape(mixed, [0, 0, group, -1, headDim], [B, kvHeads, group, T, headDim]);
    return reshape(mul(perHead, branch.gates), [0, 0, -1, headDim], [B, kvHeads, `${group}*${T}`, headDim]);
  }
}

function rowsDim(B: Dim, T: Dim): Dim {
  return typeof B === 'number' && typeof T === 'number' ? B * T : `${B}*${T}`;
}

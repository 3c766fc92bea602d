// The engine: a frozen base model on onnxruntime plus any number of Aligner
// adapters. Sessions are built once per model (training graphs once per start
// layer and method); adapters, prompts and batch shapes only change inputs.

import * as ort from 'onnxruntime-node';
import * as os from 'os';
import {
  forwardGraph,
  headGraph,
  layerBackwardGraph,
  lossGraph,
  prefixGraph,
  scoreGraph,
  stepGraph,
  trainGraph,
  TrainMethod,
} from '../../kernels/graphs';
import type { Graph } from '../../kernels/graph';
import type { WeightIndex } from '../../kernels/llama';
import { Runtime, RuntimeOptions, SessionMemory } from './runtime';
import { PassOutputs, recomputedPass, RecomputeSessions } from './recompute';
import type { BaseModel, ModelConfig } from '../model/types';
import {
  adapterFeeds,
  cachedBias,
  causalBias,
  checkAdapter,
  f32,
  Feeds,
  i64,
  maskTargets,
  PrefixKV,
  ropeFeeds,
  scalar,
  targetFeeds,
  type Targets,
} from './feeds';
import { inverseFrequencies } from './rope';
import type { AdapterWeights } from '../adapter/types';
import type { TokenBatch } from '../data/batches';
import type { DpoStepResult, SftStepResult, StepResult } from './types';
import type { Quantization } from './quantize';
import { StorageOptions, weightsFile, WEIGHTS_FILE } from './weights';
import { KVCache } from './kvcache';

export interface EngineOptions extends RuntimeOptions, StorageOptions {
  /** Where the converted weights and graph files are cached (default: see defaultCacheDir). */
  cacheDir?: string;
  /**
   * Rows (DPO: pairs) per training pass; a step runs its batch in passes and sums the
   * gradients, so its memory is that of one pass. Default: from the model's size and the
   * free memory (see microBatchRows).
   */
  microBatch?: number;
  /**
   * Whether a training pass recomputes each layer's activations in its backward pass
   * instead of keeping them, and scores its targets in chunks (src/engine/recompute.ts).
   * 'auto' (default): when the model is too large for two rows per pass without it (see
   * recomputes).
   */
  recompute?: Recompute;
  /**
   * Targets per chunk of the LM head in a training pass (recomputed or not) and in scoring
   * (tokenLogps): each chunk holds its [chunk × vocabulary] logits. Default: LOGIT_CHUNK_BYTES' worth.
   */
  logitChunk?: number;
}

export type Recompute = 'on' | 'off' | 'auto';
export const RECOMPUTE_MODES: readonly Recompute[] = ['on', 'off', 'auto'];

/** What one chunk's [chunk × vocabulary] float logits may take (the head's VJP holds about four such). */
const LOGIT_CHUNK_BYTES = 32 * 2 ** 20;

/**
 * The recomputed pass's sessions run without onnxruntime's arena: each of its many
 * sessions would otherwise keep its own largest transient (one layer's activations)
 * for good. The one-graph step keeps its arena: freshly mapped memory on every run
 * cost tiny15m's step a third of its speed (measured with `npm run bench`).
 */
const RECOMPUTED: SessionMemory = { arena: false };

/** What one pass may take on top of the weights: a quarter of the free memory, within these bounds. */
const PASS_MEMORY = { min: 512 * 2 ** 20, max: 2 * 2 ** 30 };

/**
 * Rows of T tokens per training pass. Without recomputation a row's transient
 * memory is the activations each layer keeps for the backward pass, the
 * attention scores growing with T; this estimate still counts each row's
 * [T, vocabulary] logits too (about four copies), although the pass now scores
 * its targets a chunk at a time (kernels/graphs.ts trainGraph): not re-measured
 * yet, so it stays as a margin, and it keeps Qwen2.5-0.5B on the recomputed pass
 * whose memory was measured. With recomputation, by the checkpoints (one [T, d]
 * per layer) and the one layer being recomputed: its activations and twice that
 * in gradients (measured on qwen05b: 120 MB per 256-token row); the logits come
 * in chunks of a fixed size. A recomputed pass takes the smallest budget:
 * recomputation is chosen because memory is short, and a pass of a few rows of T
 * tokens already keeps the matrix products as efficient as a larger one.
 */
export function microBatchRows(config: ModelConfig, length: number, freeBytes = os.freemem(), recompute = false): number {
  const { vocabSize: V, numLayers: L, hiddenSize: d, intermediateSize: f, numHeads: H } = config;
  const layer = 12 * d + 4 * f + 3 * H * length;
  const perToken = 4 * (recompute ? (L + 2) * d + 3 * layer : 4 * V + L * layer);
  const budget = recompute ? PASS_MEMORY.min : Math.min(PASS_MEMORY.max, Math.max(PASS_MEMORY.min, freeBytes / 4));
  return Math.max(1, Math.floor(budget / (perToken * length)));
}

/**
 * Whether training passes over rows of `length` tokens recompute layers. 'auto':
 * when the one-graph step fits fewer than two rows in a pass, since then
 * micro-batching can no longer shrink a pass and its memory is one row's full set
 * of activations (Qwen2.5-0.5B: 1.6 GB at 256 tokens by this estimate).
 */
export function recomputes(config: ModelConfig, length: number, mode: Recompute = 'auto', freeBytes = os.freemem()): boolean {
  return mode === 'auto' ? microBatchRows(config, length, freeBytes) < 2 : mode === 'on';
}

/** A batch being generated: its key/value cache and per-row adapters. */
export interface DecodeState {
  rows: number;
  /** The rows' keys and values so far, written in place step by step. */
  cache: KVCache;
  /** Next rotary position of each row. */
  positions: number[];
  /** Each row's adapter (null: the base model), its K_p/V_p, and both as step-graph inputs. */
  rowAdapters: (AdapterWeights | null)[];
  rowKV: (PrefixKV | null)[];
  adapters: Feeds;
}

export class Engine {
  /** Built on first use: chat-only sessions never pay for them. */
  private readonly lazySessions = new Map<string, Promise<ort.InferenceSession>>();
  private readonly prefixKVs = new WeakMap<AdapterWeights, { prefix: Float32Array; kv: Promise<PrefixKV> }>();
  private readonly inv: Float64Array;
  private readonly group: number;

  private constructor(
    readonly model: BaseModel,
    private readonly runtime: Runtime,
    private readonly index: WeightIndex,
    private readonly stepSession: ort.InferenceSession,
    private readonly prefixSession: ort.InferenceSession,
    /** How the frozen linear layers are stored (adapters record it). */
    readonly quantization: Quantization,
    private readonly microBatch: number | undefined,
    private readonly recompute: Recompute,
    private readonly logitChunk: number,
  ) {
    this.inv = inverseFrequencies(model.config);
    this.group = model.config.numHeads / model.config.numKvHeads;
  }

  static async create(model: BaseModel, opts: EngineOptions = {}): Promise<Engine> {
    // The training options are checked before any conversion or session, which a refusal would waste.
    if (opts.microBatch !== undefined && !(Number.isInteger(opts.microBatch) && opts.microBatch >= 1)) {
      throw new Error(`micro-batch must be a whole number of rows ≥ 1, got ${opts.microBatch}`);
    }
    if (opts.recompute !== undefined && !RECOMPUTE_MODES.includes(opts.recompute)) {
      throw new Error(`recompute must be one of ${RECOMPUTE_MODES.join(', ')}, got ${String(opts.recompute)}`);
    }
    if (opts.logitChunk !== undefined && !(Number.isInteger(opts.logitChunk) && opts.logitChunk >= 1)) {
      throw new Error(`logit chunk must be a whole number of targets ≥ 1, got ${opts.logitChunk}`);
    }
    const { dir, index } = weightsFile(model, opts.cacheDir, opts);
    const runtime = await Runtime.create(dir, opts);
    const [step, prefix] = await Promise.all([
      runtime.session(stepGraph(model.config, index).toModel(WEIGHTS_FILE), 'step'),
      runtime.session(prefixGraph(model.config, index).toModel(WEIGHTS_FILE), 'prefix'),
    ]);
    const logitChunk = opts.logitChunk ?? Math.max(1, Math.floor(LOGIT_CHUNK_BYTES / (4 * model.config.vocabSize)));
    return new Engine(
      model,
      runtime,
      index,
      step,
      prefix,
      opts.quantization ?? 'f32',
      opts.microBatch,
      opts.recompute ?? 'auto',
      logitChunk,
    );
  }

  /** The execution provider actually in use. */
  get device(): string {
    return this.runtime.provider;
  }

  // ---- training ----

  async sftStep(batch: TokenBatch, adapter: AdapterWeights): Promise<SftStepResult> {
    const targets = maskTargets(batch);
    const count = targets.ids.length;
    if (count === 0) throw new Error('training batch has no target tokens');
    const step = await this.nllStep(batch, { ...targets, weights: targets.ids.map(() => 1 / count) }, adapter);
    return { ...step, targets: count };
  }

  /**
   * A step on −Σ_k weight_k · log p(target_k): SFT's loss when every weight is 1/count; any other
   * weighting of any tokens at any positions (a refinement's edit and distillation terms).
   */
  async nllStep(batch: TokenBatch, targets: Required<Targets>, adapter: AdapterWeights): Promise<StepResult> {
    const { rows, recompute } = this.passPlan(batch.length);
    const passes = [];
    for (let start = 0; start < batch.rows; start += rows) {
      const picked = range(start, Math.min(batch.rows, start + rows));
      const part = rowTargets(targets, batch.length, start, picked.length);
      if (part.ids.length === 0) continue; // rows without targets add nothing (their log-probabilities are 0)
      const feeds = {
        ...targetFeeds(picked.length, batch.length, part),
        target_weights: f32(Float32Array.from(part.weights), [part.ids.length]),
      };
      passes.push({ out: await this.runTrain('sft', pickRows(batch, picked), adapter, feeds, recompute), picked });
    }
    return sumPasses(passes, batch.rows, adapter);
  }

  /** DPO step (SPEC §2); `refLogps` are the reference model's log-probabilities of the same rows. */
  async dpoStep(batch: TokenBatch, adapter: AdapterWeights, refLogps: Float32Array, beta: number): Promise<DpoStepResult> {
    const pairs = batch.rows / 2;
    if (!Number.isInteger(pairs) || pairs < 1)
      throw new Error('a DPO batch holds chosen rows then rejected rows: an even, non-zero row count');
    // A pass takes whole pairs: the loss couples each chosen row with its rejected one.
    const plan = this.passPlan(batch.length);
    const perPass = Math.max(1, Math.floor(plan.rows / 2));
    const passes = [];
    for (let start = 0; start < pairs; start += perPass) {
      const p = Math.min(pairs, start + perPass) - start;
      const picked = [...range(start, start + p), ...range(pairs + start, pairs + start + p)];
      const sign = new Float32Array(p * 2 * p);
      for (let i = 0; i < p; i++) {
        sign[i * 2 * p + i] = 1;
        sign[i * 2 * p + p + i] = -1;
      }
      const part = pickRows(batch, picked);
      const extra = {
        ...targetFeeds(part.rows, part.length, maskTargets(part)),
        ref_logps: f32(
          Float32Array.from(picked, (r) => refLogps[r]),
          [2 * p],
        ),
        pairs: f32(sign, [p, 2 * p]),
        beta: scalar(beta),
        inv_pairs: scalar(1 / pairs),
      };
      passes.push({ out: await this.runTrain('dpo', part, adapter, extra, plan.recompute), picked });
    }
    return sumPasses(passes, batch.rows, adapter);
  }

  /** Whether passes over rows of `length` tokens recompute layers, and their rows: the forced micro-batch, else what the memory allows. */
  private passPlan(length: number): { rows: number; recompute: boolean } {
    const free = os.freemem();
    const recompute = recomputes(this.model.config, length, this.recompute, free);
    return { rows: this.microBatch ?? microBatchRows(this.model.config, length, free, recompute), recompute };
  }

  private async runTrain(
    method: TrainMethod,
    batch: TokenBatch,
    a: AdapterWeights,
    extra: Feeds,
    recompute: boolean,
  ): Promise<PassOutputs> {
    checkAdapter(this.model.config, a);
    const feeds = {
      ...this.batchInputs(batch),
      prefix: f32(a.prefix, [a.tokens, this.model.config.hiddenSize]),
      gates: f32(a.gates, [this.model.config.numLayers - a.startLayer, this.model.config.numHeads]),
      ...extra,
    };
    if (recompute) return recomputedPass(this.recomputeSessions, this.model.config, method, a, feeds, this.logitChunk);
    const out = await (await this.trainSession(method, a.startLayer)).run(feeds);
    return {
      loss: (out.loss.data as Float32Array)[0],
      gradPrefix: out.grad_prefix.data as Float32Array,
      gradGates: out.grad_gates.data as Float32Array,
      logps: out.logps.data as Float32Array,
    };
  }

  /** Ids, rotary tables (positions 0..T−1 in every row) and the causal mask of a right-padded batch. */
  private batchInputs({ rows, length, inputIds }: TokenBatch): Feeds {
    return {
      input_ids: i64(inputIds, [rows, length]),
      ...ropeFeeds(
        this.inv,
        Array.from({ length: rows * length }, (_, i) => i % length),
        rows,
        length,
      ),
      attn_bias: causalBias(this.group, length),
    };
  }

  private trainSession(method: TrainMethod, startLayer: number): Promise<ort.InferenceSession> {
    return this.lazySession(`train-${method}-${startLayer}`, () =>
      trainGraph(this.model.config, this.index, startLayer, method, this.logitChunk),
    );
  }

  private readonly recomputeSessions: RecomputeSessions = {
    forward: (s) => this.lazySession(`train-forward-${s}`, () => forwardGraph(this.model.config, this.index, s), RECOMPUTED),
    head: () => this.lazySession('train-head', () => headGraph(this.model.config, this.index), RECOMPUTED),
    loss: (method) => this.lazySession(`train-loss-${method}`, () => lossGraph(method), RECOMPUTED),
    layer: (l) => this.lazySession(`train-layer-${l}`, () => layerBackwardGraph(this.model.config, this.index, l), RECOMPUTED),
  };

  private lazySession(name: string, build: () => Graph, memory?: SessionMemory): Promise<ort.InferenceSession> {
    let s = this.lazySessions.get(name);
    if (!s) {
      s = this.runtime.session(build().toModel(WEIGHTS_FILE), name, memory);
      this.lazySessions.set(name, s);
    }
    return s;
  }

  // ---- inference ----

  /** Log-probability of each scored target, in flat batch order, without gradients. */
  async tokenLogps(batch: TokenBatch, adapter: AdapterWeights | null): Promise<Float32Array> {
    return this.targetLogps(batch, maskTargets(batch), adapter);
  }

  /** Log-probability of each of `targets` in a batch, in their order, without gradients. */
  async targetLogps(batch: TokenBatch, targets: Targets, adapter: AdapterWeights | null): Promise<Float32Array> {
    if (targets.ids.length === 0) return new Float32Array(0);
    const adapters = Array<AdapterWeights | null>(batch.rows).fill(adapter);
    const kv = adapter ? await this.prefixKV(adapter) : null;
    const session = await this.lazySession('score', () => scoreGraph(this.model.config, this.index, this.logitChunk));
    const { target_pos, target_ids } = targetFeeds(batch.rows, batch.length, targets);
    const out = await session.run({
      ...this.batchInputs(batch),
      ...adapterFeeds(
        this.model.config,
        adapters,
        adapters.map(() => kv),
      ),
      target_pos,
      target_ids,
    });
    return out.token_logps.data as Float32Array;
  }

  /** Per-row sums of the scored targets' log-probabilities (DPO reference, evaluation). */
  async sequenceLogps(batch: TokenBatch, adapter: AdapterWeights | null): Promise<Float32Array> {
    const tokens = await this.tokenLogps(batch, adapter);
    const sums = new Float64Array(batch.rows);
    let k = 0;
    batch.mask.forEach((m, i) => {
      if (m) sums[Math.floor(i / batch.length)] += tokens[k++];
    });
    return Float32Array.from(sums);
  }

  /**
   * Logits [T·V] at every position of each row (or [V] at the last one with
   * `lastOnly`), each row with its own adapter or none.
   */
  async logits(ids: number[][], adapters: (AdapterWeights | null)[], opts: { lastOnly?: boolean } = {}): Promise<Float32Array[]> {
    const wanted = (b: number, t: number) => (opts.lastOnly ? t === ids[b].length - 1 : t < ids[b].length);
    const { logits } = await this.forward(ids, adapters, wanted);
    const V = this.model.config.vocabSize;
    let k = 0;
    return ids.map((row) => {
      const n = opts.lastOnly ? 1 : row.length;
      const out = logits.slice(k * V, (k + n) * V);
      k += n;
      return out;
    });
  }

  /** Runs the prompts (right-padded into one batch) and returns the last-position logits of each row. */
  async prefill(prompts: number[][], adapters: (AdapterWeights | null)[]): Promise<{ state: DecodeState; logits: Float32Array[] }> {
    const { logits, state } = await this.forward(prompts, adapters, (b, t) => t === prompts[b].length - 1);
    const V = this.model.config.vocabSize;
    return { state, logits: prompts.map((_, b) => logits.slice(b * V, (b + 1) * V)) };
  }

  /** Feeds one new token per row and returns each row's next-token logits; `state` advances in place. */
  async decode(state: DecodeState, tokens: number[]): Promise<Float32Array[]> {
    const B = state.rows;
    if (tokens.length !== B) throw new Error(`decode takes one token per row: ${tokens.length} for ${B} rows`);
    const context = this.model.config.maxPositions;
    if (state.positions.some((p) => p >= context)) throw new Error(`generation reached the model's context of ${context} tokens`);
    const out = await this.runStep(
      state,
      tokens,
      state.positions,
      1,
      Array(B).fill(1),
      Array.from({ length: B }, (_, b) => b),
    );
    state.positions = state.positions.map((p) => p + 1);
    const V = this.model.config.vocabSize;
    return tokens.map((_, b) => out.slice(b * V, (b + 1) * V));
  }

  /** One pass without cache over right-padded rows, logits where `wanted(row, t)`. */
  private async forward(ids: number[][], adapters: (AdapterWeights | null)[], wanted: (b: number, t: number) => boolean) {
    if (ids.length !== adapters.length) throw new Error(`${ids.length} rows but ${adapters.length} adapters`);
    if (ids.some((r) => r.length === 0)) throw new Error('every row needs at least one token');
    const B = ids.length;
    const T = Math.max(...ids.map((r) => r.length));
    if (T > this.model.config.maxPositions) throw new Error(`${T} tokens exceed the model's context of ${this.model.config.maxPositions}`);
    const flat: number[] = [];
    const positions: number[] = [];
    const valid: number[] = [];
    const logitPos: number[] = [];
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        flat.push(t < ids[b].length ? ids[b][t] : 0);
        positions.push(t);
        valid.push(t < ids[b].length ? 1 : 0);
        if (wanted(b, t)) logitPos.push(b * T + t);
      }
    }
    const state = await this.emptyState(adapters);
    const logits = await this.runStep(state, flat, positions, T, valid, logitPos);
    state.positions = ids.map((r) => r.length);
    return { logits, state };
  }

  private async emptyState(adapters: (AdapterWeights | null)[]): Promise<DecodeState> {
    const { numLayers, numKvHeads, headDim } = this.model.config;
    const kv = await Promise.all(adapters.map((a) => (a ? this.prefixKV(a) : null)));
    return {
      rows: adapters.length,
      cache: KVCache.empty(numLayers, adapters.length, numKvHeads, headDim),
      positions: [],
      rowAdapters: adapters,
      rowKV: kv,
      adapters: adapterFeeds(this.model.config, adapters, kv),
    };
  }

  /**
   * One batch of the rows of `a` then those of `b`, so that requests that
   * arrive while others decode join them (continuous batching). The shorter
   * cache is padded with masked slots; every row keeps its rotary positions.
   */
  joinStates(a: DecodeState, b: DecodeState): DecodeState {
    const rowAdapters = [...a.rowAdapters, ...b.rowAdapters];
    const rowKV = [...a.rowKV, ...b.rowKV];
    return {
      rows: a.rows + b.rows,
      cache: KVCache.join(a.cache, b.cache),
      positions: [...a.positions, ...b.positions],
      rowAdapters,
      rowKV,
      adapters: adapterFeeds(this.model.config, rowAdapters, rowKV),
    };
  }

  /**
   * The state of only the given rows (in that order), for a batch whose other
   * rows finished. Cache slots that no kept row sees are dropped, so a long-lived
   * batch does not carry the padding of rows that have left.
   */
  keepRows(state: DecodeState, keep: number[]): DecodeState {
    const rowAdapters = keep.map((r) => state.rowAdapters[r]);
    const rowKV = keep.map((r) => state.rowKV[r]);
    return {
      rows: keep.length,
      cache: state.cache.keep(keep),
      positions: keep.map((r) => state.positions[r]),
      rowAdapters,
      rowKV,
      adapters: adapterFeeds(this.model.config, rowAdapters, rowKV),
    };
  }

  /** T new tokens per row on top of the cache; appends them to `state` and returns logits at `logitPos`. */
  private async runStep(
    state: DecodeState,
    flat: number[],
    positions: number[],
    T: number,
    newValid: number[],
    logitPos: number[],
  ): Promise<Float32Array> {
    const B = state.rows;
    const L = this.model.config.numLayers;
    const { cache } = state;
    const out = await this.stepSession.run({
      input_ids: i64(flat, [B, T]),
      ...ropeFeeds(this.inv, positions, B, T),
      attn_bias: cachedBias(this.group, B, cache.slots, T, cache.validity),
      ...state.adapters,
      logit_pos: i64(logitPos, [logitPos.length]),
      ...cache.feeds(),
    });
    const layers = (name: string) => Array.from({ length: L }, (_, l) => out[`${name}_${l}`].data as Float32Array);
    cache.append(layers('new_key'), layers('new_value'), newValid, T);
    return out.logits.data as Float32Array;
  }

  /**
   * K_p, V_p of an adapter, computed once per adapter (SPEC §2: they do not
   * depend on the input). The prefix is compared on each use because training
   * updates it in place.
   */
  prefixKV(a: AdapterWeights): Promise<PrefixKV> {
    const cached = this.prefixKVs.get(a);
    if (cached && sameValues(cached.prefix, a.prefix)) return cached.kv;
    checkAdapter(this.model.config, a);
    const kv = this.prefixSession.run({ prefix: f32(a.prefix, [a.tokens, this.model.config.hiddenSize]) }).then((o) => ({
      keys: o.keys.data as Float32Array,
      values: o.values.data as Float32Array,
    }));
    this.prefixKVs.set(a, { prefix: a.prefix.slice(), kv });
    return kv;
  }

  async dispose(): Promise<void> {
    const sessions = [this.stepSession, this.prefixSession, ...(await Promise.all(this.lazySessions.values()))];
    await Promise.all(sessions.map((s) => s.release()));
  }
}

function range(start: number, end: number): number[] {
  return Array.from({ length: end - start }, (_, i) => start + i);
}

/** The targets of rows start..start+rows−1, their positions counted from row `start`. */
function rowTargets(targets: Required<Targets>, length: number, start: number, rows: number): Required<Targets> {
  const out: Required<Targets> = { positions: [], ids: [], weights: [] };
  targets.positions.forEach((p, k) => {
    const at = p - start * length;
    if (at < 0 || at >= rows * length) return;
    out.positions.push(at);
    out.ids.push(targets.ids[k]);
    out.weights.push(targets.weights[k]);
  });
  return out;
}

/** The rows `picked` of a batch, same length. */
function pickRows(batch: TokenBatch, picked: number[]): TokenBatch {
  const T = batch.length;
  const take = <A extends Int32Array | Uint8Array>(src: A, out: A) => {
    picked.forEach((r, i) => out.set(src.subarray(r * T, (r + 1) * T), i * T));
    return out;
  };
  const n = picked.length * T;
  return {
    rows: picked.length,
    length: T,
    inputIds: take(batch.inputIds, new Int32Array(n)),
    targets: take(batch.targets, new Int32Array(n)),
    mask: take(batch.mask, new Uint8Array(n)),
  };
}

/** One step's result from its passes: losses and gradients summed (each pass is already scaled by the whole batch), log-probabilities put back in row order. */
function sumPasses(passes: { out: PassOutputs; picked: number[] }[], rows: number, a: AdapterWeights) {
  const gradPrefix = new Float32Array(a.prefix.length);
  const gradGates = new Float32Array(a.gates.length);
  const logps = new Float32Array(rows);
  let loss = 0;
  for (const { out, picked } of passes) {
    loss += out.loss;
    out.gradPrefix.forEach((g, i) => (gradPrefix[i] += g));
    out.gradGates.forEach((g, i) => (gradGates[i] += g));
    picked.forEach((r, i) => (logps[r] = out.logps[i]));
  }
  return { loss, gradPrefix, gradGates, logps };
}

function sameValues(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
}

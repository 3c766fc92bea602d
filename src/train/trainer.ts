// The training loop: tokenise, split, batch, then AdamW steps on the adapter
// with warm-up + cosine, clipping and a NaN/Inf guard. SFT and DPO (SPEC §2).
// Writes nothing: the caller saves the returned adapter, so a cancelled or
// failed run never leaves a partial file.

import { newAdapter } from '../adapter/new';
import { chosenRows, makeBatches, makePairBatches, splitValidation, type TokenBatch } from '../data/batches';
import { Example, PreferencePair, toExamples, toPreferencePairs } from '../data/examples';
import { EmptyDataError } from '../data/errors';
import type { PromptCompletionRecord, RecordSet } from '../data/records';
import type { Engine } from '../engine/engine';
import type { AdapterWeights } from '../adapter/types';
import type { StepResult } from '../engine/types';
import { AdamW } from './adamw';
import { endTokenId } from './endtoken';
import { allFinite, clipGradNorm } from './clip';
import { correctionStep, correctionTerms, type CorrectionTerms, type ReferenceTops } from './corrections';
import { TRAIN_DEFAULTS } from './defaults';
import { makeSchedule } from './schedule';

/** Absent fields take TRAIN_DEFAULTS (src/train/defaults.ts). */
export interface TrainOptions {
  method?: 'sft' | 'dpo';
  /** Prefix vectors N (SPEC §2 "auto" by default). */
  tokens?: number | 'auto';
  startLayer?: number;
  epochs?: number;
  /** Stop after this many optimizer steps (overrides epochs). */
  steps?: number;
  lr?: number;
  weightDecay?: number;
  batchSize?: number;
  maxLen?: number;
  /** Fraction of examples held out for the validation loss. */
  valSplit?: number;
  /** A separate validation set (then nothing is held out of the training data). */
  validation?: RecordSet;
  seed?: number;
  warmup?: number;
  schedule?: 'cosine' | 'constant';
  /** Gradient-norm clip; 0 turns it off. */
  clip?: number;
  shuffle?: boolean;
  /** DPO β. */
  beta?: number;
  /** Start from this adapter instead of a fresh one (continue training). */
  init?: AdapterWeights;
  /** DPO reference: an earlier adapter; the base model when absent. */
  reference?: AdapterWeights | null;
  /**
   * DPO only, opt-in: adds alpha × the token-mean NLL of the chosen answers to the DPO loss
   * (RPO, Pang et al. 2024; TRL's `rpo_alpha`). 0 (the default) is SPEC's plain DPO.
   */
  rpoAlpha?: number;
  /**
   * DPO only: answers the reference wrote itself to the pairs' prompts, which the anchor term
   * (anchorWeight) holds at the reference's distribution with the chosen answers' unedited
   * tokens; each epoch passes over them once.
   */
  anchor?: PromptCompletionRecord[];
  /**
   * DPO only: × the KL divergence from the reference's likeliest next tokens, over the answer
   * tokens that no correction changed (src/train/corrections.ts); 0 (the default) leaves it out.
   */
  anchorWeight?: number;
  /** DPO only: × the (1 − p)-weighted NLL of the tokens the corrections changed (src/train/corrections.ts); 0 (the default) leaves it out. */
  editWeight?: number;
}

export interface TrainProgress {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  lr: number;
  valLoss?: number;
  tokensPerSec: number;
  etaSec: number;
}

export interface TrainSummary {
  method: 'sft' | 'dpo';
  examples: number;
  trainExamples: number;
  valExamples: number;
  truncated: number;
  dropped: number;
  epochs: number;
  steps: number;
  /** Mean loss over the last epoch's steps. */
  trainLoss: number | null;
  valLoss: number | null;
  /** Validation loss of the starting point (base model for a fresh SFT adapter). */
  initialValLoss: number | null;
  /**
   * DPO with held-out pairs: the share of them whose chosen answer the model finds more likely
   * than the rejected one (summed log-probabilities, as the DPO loss), before and after training.
   */
  preferenceAccuracy?: { before: number; after: number };
  seconds: number;
  /** Set when the NaN/Inf guard stopped the run; the adapter is the last good one. */
  stoppedEarly?: string;
}

export interface TrainHooks {
  onProgress?(p: TrainProgress): void;
  /** Awaited at the end of every epoch (after its validation loss), before that step's onProgress. */
  onCheckpoint?(adapter: AdapterWeights, step: number): Promise<void>;
  signal?: AbortSignal;
}

export class TrainingCancelled extends Error {
  constructor() {
    super('training cancelled');
    this.name = 'AbortError';
  }
}

interface Prepared {
  /** The training batches of an epoch (0-based), each epoch shuffled with its own seed. */
  train: (epoch: number) => TokenBatch[];
  /** DPO with an anchor: one batch of the reference's own answers per training batch. */
  anchor: (epoch: number) => TokenBatch[];
  validation: TokenBatch[];
  counts: Pick<TrainSummary, 'examples' | 'trainExamples' | 'valExamples' | 'truncated' | 'dropped'>;
}

export async function train(engine: Engine, source: RecordSet, opts: TrainOptions = {}, hooks: TrainHooks = {}) {
  const method = opts.method ?? (source.form === 'preference' ? 'dpo' : 'sft');
  const cfg = engine.model.config;
  const seed = opts.seed ?? TRAIN_DEFAULTS.seed;
  const epochs = opts.epochs ?? TRAIN_DEFAULTS.epochs;
  const data = prepare(engine, source, method, opts, seed, await endTokenId(engine, plainTexts(source)));
  if (data.counts.trainExamples === 0) {
    const maxLen = Math.min(opts.maxLen ?? 512, cfg.maxPositions);
    throw new EmptyDataError(
      `${source.file}: no example to train on: none of the ${data.counts.dropped} records has a target token ` +
        `(an answer, a completion, text) within the first ${maxLen} tokens`,
    );
  }
  const perEpoch = data.train(0).length;
  const totalSteps = opts.steps ?? perEpoch * epochs;
  if (totalSteps < 1) throw new Error(`${source.file}: no training batches (${data.counts.trainExamples} training examples)`);

  const adapter = opts.init
    ? copyAdapter(opts.init)
    : newAdapter(cfg, opts.tokens ?? TRAIN_DEFAULTS.tokens, opts.startLayer ?? TRAIN_DEFAULTS.startLayer, seed);
  const lr = opts.lr ?? TRAIN_DEFAULTS.lr[method];
  const optimizer = new AdamW([adapter.prefix, adapter.gates], { lr, weightDecay: opts.weightDecay ?? TRAIN_DEFAULTS.weightDecay });
  const warmup = opts.warmup ?? Math.min(100, Math.ceil(totalSteps * TRAIN_DEFAULTS.warmupFraction));
  const schedule = makeSchedule({ kind: opts.schedule ?? TRAIN_DEFAULTS.schedule, peakLr: lr, warmupSteps: warmup, totalSteps });
  const beta = opts.beta ?? TRAIN_DEFAULTS.beta;
  const reference = opts.reference ?? null;
  const rpoAlpha = opts.rpoAlpha ?? TRAIN_DEFAULTS.rpoAlpha;
  if (!(rpoAlpha >= 0)) throw new RangeError(`rpo alpha must be ≥ 0, got ${rpoAlpha}`);
  const terms = correctionTerms(opts);
  const tops: ReferenceTops = new Map();
  let accuracy: number | null = null;
  const evaluate = async (signal?: AbortSignal) => {
    const v = await validate(engine, data.validation, adapter, method, reference, beta, signal);
    accuracy = v?.accuracy ?? null;
    return v?.loss ?? null;
  };

  const initialValLoss = await evaluate(hooks.signal);
  const initialAccuracy = accuracy as number | null;
  const started = Date.now();
  let tokens = 0;
  let step = 0;
  let valLoss = initialValLoss;
  let epochLosses: number[];
  let lastEpochLoss: number | null = null;
  let stoppedEarly: string | undefined;
  let epoch = 0;
  outer: for (; step < totalSteps; epoch++) {
    if (hooks.signal?.aborted) throw new TrainingCancelled();
    epochLosses = [];
    const anchors = terms.keep > 0 ? data.anchor(epoch) : [];
    for (const [i, batch] of data.train(epoch).entries()) {
      if (step >= totalSteps) break;
      if (hooks.signal?.aborted) throw new TrainingCancelled();
      const r =
        method === 'sft'
          ? await engine.sftStep(batch, adapter)
          : await preferenceStep(engine, batch, adapter, reference, beta, rpoAlpha, anchors[i], terms, tops);
      if (!Number.isFinite(r.loss) || !allFinite([r.gradPrefix, r.gradGates])) {
        stoppedEarly = `non-finite loss or gradient at step ${step + 1}; kept the adapter from step ${step}`;
        break outer;
      }
      const good = copyAdapter(adapter);
      clipGradNorm([r.gradPrefix, r.gradGates], opts.clip ?? TRAIN_DEFAULTS.clip);
      const rate = schedule.lrAt(step);
      optimizer.update([r.gradPrefix, r.gradGates], rate);
      if (!allFinite([adapter.prefix, adapter.gates])) {
        adapter.prefix.set(good.prefix);
        adapter.gates.set(good.gates);
        stoppedEarly = `non-finite parameters after step ${step + 1}; kept the adapter from step ${step}`;
        break outer;
      }
      step++;
      tokens += realTokens(batch);
      epochLosses.push(r.loss);
      const elapsed = (Date.now() - started) / 1000;
      const endOfEpoch = step % perEpoch === 0 || step === totalSteps;
      if (endOfEpoch) {
        valLoss = await evaluate(hooks.signal);
        await hooks.onCheckpoint?.(adapter, step);
      }
      hooks.onProgress?.({
        step,
        totalSteps,
        epoch: epoch + 1,
        loss: r.loss,
        lr: rate,
        valLoss: endOfEpoch ? (valLoss ?? undefined) : undefined,
        tokensPerSec: tokens / Math.max(elapsed, 1e-9),
        etaSec: (elapsed / step) * (totalSteps - step),
      });
    }
    if (epochLosses.length) lastEpochLoss = mean(epochLosses);
  }
  if (stoppedEarly) valLoss = await evaluate(hooks.signal);
  const summary: TrainSummary = {
    method,
    ...data.counts,
    epochs: Math.min(epoch, Math.ceil(step / perEpoch)),
    steps: step,
    trainLoss: lastEpochLoss,
    valLoss,
    initialValLoss,
    ...(initialAccuracy !== null && accuracy !== null ? { preferenceAccuracy: { before: initialAccuracy, after: accuracy } } : {}),
    seconds: (Date.now() - started) / 1000,
    ...(stoppedEarly ? { stoppedEarly } : {}),
  };
  return { adapter, summary };
}

/**
 * One DPO step against the reference's log-probabilities, plus optional terms (the gradient of a
 * sum is the sum of the gradients): alpha × the chosen rows' NLL (RPO), and the corrections'
 * edit and anchor terms (src/train/corrections.ts says why DPO needs them).
 */
async function preferenceStep(
  engine: Engine,
  batch: TokenBatch,
  adapter: AdapterWeights,
  reference: AdapterWeights | null,
  beta: number,
  alpha: number,
  anchor: TokenBatch | undefined,
  terms: CorrectionTerms,
  tops: ReferenceTops,
) {
  const dpo = await engine.dpoStep(batch, adapter, await engine.sequenceLogps(batch, reference), beta);
  let loss = dpo.loss;
  const add = (step: StepResult, weight: number) => {
    step.gradPrefix.forEach((g, i) => (dpo.gradPrefix[i] += weight * g));
    step.gradGates.forEach((g, i) => (dpo.gradGates[i] += weight * g));
    loss += weight * step.loss;
  };
  if (alpha > 0) add(await engine.sftStep(chosenRows(batch), adapter), alpha);
  if (terms.edit > 0 || terms.keep > 0) {
    const corrections = await correctionStep(engine, batch, anchor, adapter, reference, terms, tops);
    for (const step of corrections.steps) add(step, 1);
    loss += corrections.constant;
  }
  return { ...dpo, loss };
}

/** Tokenises, holds out the validation split and batches every epoch with its own shuffle. */
function prepare(
  engine: Engine,
  source: RecordSet,
  method: 'sft' | 'dpo',
  opts: TrainOptions,
  seed: number,
  endId: number | null,
): Prepared {
  const { tokenizer, config } = engine.model;
  const maxLen = Math.min(opts.maxLen ?? TRAIN_DEFAULTS.maxLen, config.maxPositions);
  const shape = { maxLen, endId };
  const batchSize = opts.batchSize ?? TRAIN_DEFAULTS.batchSize;
  const padId = 0;
  const shuffle = opts.shuffle ?? true;
  if (method === 'dpo') {
    if (source.form !== 'preference')
      throw new Error(`${source.file}: DPO needs {"prompt","chosen","rejected"} records, found the "${source.form}" form`);
    const pairs = toPreferencePairs(source.records, tokenizer, shape);
    const held = opts.validation
      ? { train: pairs.items, validation: toPreferencePairs(preferenceRecords(opts.validation), tokenizer, shape).items }
      : undefined;
    const { train, validation } = held ?? splitValidation(pairs.items, opts.valSplit ?? defaultValSplit(pairs.items.length), seed);
    const anchor = toExamples(opts.anchor ?? [], 'prompt-completion', tokenizer, { maxLen, endId: null }).items;
    const steps = Math.ceil(train.length / batchSize);
    return {
      train: (e) => makePairBatches(train, { batchSize, seed: seed + e, shuffle, padId }),
      anchor: (e) =>
        anchor.length === 0 ? [] : makeBatches(anchor, { batchSize: Math.ceil(anchor.length / steps), seed: seed + e, shuffle, padId }),
      validation: makePairBatches(validation, { batchSize, seed, shuffle: false, padId }),
      counts: counts(pairs.items.length, train, validation, pairs),
    };
  }
  if (source.form === 'preference') throw new Error(`${source.file}: preference records train with --method dpo`);
  const examples = toExamples(source.records, source.form, tokenizer, shape);
  const v = opts.validation;
  if (v?.form === 'preference') throw new Error(`${v.file}: an SFT validation set cannot hold preference records`);
  const held = v ? { train: examples.items, validation: toExamples(v.records, v.form, tokenizer, shape).items } : undefined;
  const { train, validation } = held ?? splitValidation(examples.items, opts.valSplit ?? defaultValSplit(examples.items.length), seed);
  return {
    train: (e) => makeBatches(train, { batchSize, seed: seed + e, shuffle, padId }),
    anchor: () => [],
    validation: makeBatches(validation, { batchSize, seed, shuffle: false, padId }),
    counts: counts(examples.items.length, train, validation, examples),
  };
}

/** The texts whose end the model is asked about; chat records need no end token (templates mark turn ends). */
function plainTexts(source: RecordSet): string[] {
  if (source.form === 'text') return source.records.map((r) => r.text);
  if (source.form === 'prompt-completion') return source.records.map((r) => r.prompt + r.completion);
  if (source.form === 'preference') return source.records.map((r) => r.prompt + r.chosen);
  return [];
}

function preferenceRecords(set: RecordSet) {
  if (set.form !== 'preference') throw new Error(`${set.file}: a DPO validation set needs {"prompt","chosen","rejected"} records`);
  return set.records;
}

function counts(total: number, train: (Example | PreferencePair)[], validation: unknown[], t: { truncated: number; dropped: number }) {
  return { examples: total, trainExamples: train.length, valExamples: validation.length, truncated: t.truncated, dropped: t.dropped };
}

/** 10% held out once there are enough examples for it to mean something. */
function defaultValSplit(n: number): number {
  return n >= 20 ? 0.1 : 0;
}

/**
 * SFT: token-mean cross-entropy; DPO: mean pair loss against the reference, and the share of
 * pairs whose chosen answer is the more likely one. Null without a validation split.
 */
async function validate(
  engine: Engine,
  batches: TokenBatch[],
  adapter: AdapterWeights,
  method: 'sft' | 'dpo',
  reference: AdapterWeights | null,
  beta: number,
  signal?: AbortSignal,
): Promise<{ loss: number; accuracy: number | null } | null> {
  if (batches.length === 0) return null;
  let total = 0;
  let count = 0;
  let preferred = 0;
  for (const batch of batches) {
    if (signal?.aborted) throw new TrainingCancelled();
    const logps = await engine.sequenceLogps(batch, adapter);
    if (method === 'sft') {
      total -= logps.reduce((a, b) => a + b, 0);
      count += batch.mask.reduce((a, b) => a + b, 0);
      continue;
    }
    const ref = await engine.sequenceLogps(batch, reference);
    const P = batch.rows / 2;
    for (let i = 0; i < P; i++) {
      const z = beta * (logps[i] - logps[P + i] - (ref[i] - ref[P + i]));
      total += Math.log1p(Math.exp(-z));
      count++;
      if (logps[i] > logps[P + i]) preferred++;
    }
  }
  return { loss: total / count, accuracy: method === 'dpo' ? preferred / count : null };
}

function realTokens(batch: TokenBatch): number {
  let n = 0;
  for (let b = 0; b < batch.rows; b++) {
    const row = batch.inputIds.subarray(b * batch.length, (b + 1) * batch.length);
    let last = row.length;
    while (last > 0 && row[last - 1] === 0) last--;
    n += last;
  }
  return n;
}

function copyAdapter(a: AdapterWeights): AdapterWeights {
  return { ...a, prefix: a.prefix.slice(), gates: a.gates.slice() };
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

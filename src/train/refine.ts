// Refinement from preference pairs (issue 11, "learning from corrections"): DPO whose starting
// point and reference are the adapter the pairs correct (SPEC §2: π_ref "a given earlier
// adapter"), for `aligner refine` and the worker's aligner/refine alike.

import type { AdapterWeights } from '../adapter/types';
import type { Engine } from '../engine/engine';
import { DataError } from '../data/errors';
import type { PreferenceRecord, RecordSet } from '../data/records';
import { correctionTerms } from './corrections';
import { TRAIN_DEFAULTS } from './defaults';
import { train, type TrainHooks, type TrainOptions } from './trainer';

/**
 * The share of pairs held out to measure the preference accuracy before and after. The trainer
 * holds out nothing below 20 examples; corrections come a few at a time, and a refinement whose
 * effect the user cannot see is not worth running, so a quarter of them (at least one) is held
 * out from 2 pairs on.
 */
export function refineValSplit(pairs: number): number | undefined {
  if (pairs >= 20) return undefined; // the trainer's own split
  return pairs >= 2 ? Math.max(1, Math.round(pairs / 4)) / pairs : 0;
}

/**
 * The training options of a refinement of `adapter` on `pairs` pairs: `opts` with DPO from and
 * against `adapter`, and TRAIN_DEFAULTS.refine where `opts` says nothing. The anchor's answers
 * (opts.anchor) are the caller's to sample first, as anchorSampling says.
 */
export function refineOptions(adapter: AdapterWeights, pairs: number, opts: TrainOptions = {}): TrainOptions {
  const d = TRAIN_DEFAULTS.refine;
  return {
    ...opts,
    lr: opts.lr ?? d.lr,
    epochs: opts.epochs ?? d.epochs,
    rpoAlpha: opts.rpoAlpha ?? d.rpoAlpha,
    anchorWeight: opts.anchorWeight ?? d.anchorWeight,
    editWeight: opts.editWeight ?? d.editWeight,
    method: 'dpo',
    init: adapter,
    reference: adapter,
    tokens: adapter.tokens,
    startLayer: adapter.startLayer,
    valSplit: opts.valSplit ?? (opts.validation ? undefined : refineValSplit(pairs)),
  };
}

/** Refines `adapter` by DPO on the {prompt, chosen, rejected} records of `pairs`; writes nothing (the caller saves). */
export function refine(engine: Engine, pairs: RecordSet, adapter: AdapterWeights, opts: TrainOptions = {}, hooks: TrainHooks = {}) {
  if (pairs.form !== 'preference')
    throw new DataError(pairs.file, 1, `refining needs {"prompt","chosen","rejected"} records, found the "${pairs.form}" form`);
  return train(engine, pairs, refineOptions(adapter, pairs.records.length, opts), hooks);
}

/**
 * What to sample for the anchor of a refinement (TrainOptions.anchor): `perPair` answers that the
 * adapter writes itself to each of `pairs`' prompts, from `seed` (src/generate/answers.ts,
 * referenceAnswers, which src/train may not import); undefined when the anchor is off (anchorWeight 0).
 */
export function anchorSampling(
  adapter: AdapterWeights,
  data: RecordSet,
  opts: TrainOptions,
): { pairs: PreferenceRecord[]; perPair: number; seed: number } | undefined {
  // The weights are checked here, before the answers take their time.
  const terms = correctionTerms(refineOptions(adapter, data.records.length, opts));
  if (data.form !== 'preference' || terms.keep === 0) return undefined;
  return { pairs: data.records, perPair: TRAIN_DEFAULTS.refine.anchorAnswers, seed: opts.seed ?? TRAIN_DEFAULTS.seed };
}

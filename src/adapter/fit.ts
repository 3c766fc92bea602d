// The one rule that decides whether an adapter fits a base model (SPEC §2, §5). The adapter
// list (header only), reading an adapter for chat or training, the CLI and the engine's feed
// check all ask fitProblem, so the picker never offers an adapter that loading then refuses.

import * as path from 'path';
import type { BaseModel, ModelConfig } from '../model/types';
import { AdapterMismatchError } from './errors';
import { MAX_TOKENS, type AdapterFile, type AdapterLayout, type AdapterWeights } from './types';
import { excerpt } from '../util/json';

/** What an adapter is checked against: a model's dimensions and, when known, its identity. */
export interface FitTarget extends Pick<ModelConfig, 'hiddenSize' | 'numLayers' | 'numHeads'> {
  name: string;
  fingerprint?: string;
  /** Also accepted: the fingerprint of adapters written before it was storage-independent (model/fingerprint.ts). */
  legacyFingerprint?: string;
}

/**
 * Why the adapter described by `a` does not fit `model`, or null when it does. `label` names the
 * adapter at the start of the message (e.g. `adapter "mine"`).
 */
export function fitProblem(a: AdapterLayout, model: FitTarget, label: string): string | null {
  const { hiddenSize, numLayers, numHeads } = model;
  const known = [model.fingerprint, model.legacyFingerprint];
  if (a.base && model.fingerprint !== undefined && !known.includes(a.base.fingerprint)) {
    return (
      `${label} was trained for base model ${excerpt(a.base.model)} (fingerprint ${a.base.fingerprint.slice(0, 80)}), ` +
      `not for "${model.name}" (fingerprint ${model.fingerprint})`
    );
  }
  if (!(Number.isInteger(a.tokens) && a.tokens >= 1 && a.tokens <= MAX_TOKENS)) {
    return `${label}: ${a.tokens} prefix tokens; an adapter has 1 to ${MAX_TOKENS}`;
  }
  if (!(Number.isInteger(a.startLayer) && a.startLayer >= 0 && a.startLayer < numLayers)) {
    return `${label}: start layer ${a.startLayer} is beyond the model's ${numLayers} layers`;
  }
  const [tokens, columns] = a.prefixShape;
  if (tokens !== a.tokens || columns !== hiddenSize) {
    return `${label}: tensor "prefix" has shape [${a.prefixShape}], but "${model.name}" needs [${a.tokens}, ${hiddenSize}] (hidden size ${hiddenSize})`;
  }
  const rows = numLayers - a.startLayer;
  if (a.gatesShape[0] !== rows || a.gatesShape[1] !== numHeads) {
    return (
      `${label}: tensor "gates" has shape [${a.gatesShape}], expected [${rows}, ${numHeads}] ` +
      `for "${model.name}" (${numLayers} layers from start layer ${a.startLayer}, ${numHeads} heads)`
    );
  }
  return null;
}

/** Refuses an adapter file trained for another base model, or whose shapes do not fit this one. */
export function checkAdapterFits(adapter: AdapterFile, model: BaseModel, file: string): void {
  const problem = fitProblem(
    adapter.layout,
    { ...model.config, name: model.name, fingerprint: model.fingerprint, legacyFingerprint: model.legacyFingerprint },
    `adapter "${path.basename(file)}"`,
  );
  if (problem) throw new AdapterMismatchError(problem);
}

/** The layout of weights held in memory, whose flat arrays only say how many values they hold. */
export function layoutOfWeights(a: AdapterWeights, numHeads: number): AdapterLayout {
  return {
    tokens: a.tokens,
    startLayer: a.startLayer,
    prefixShape: [a.tokens, a.prefix.length / a.tokens],
    gatesShape: [a.gates.length / numHeads, numHeads],
  };
}

/**
 * The one-line notice for an adapter trained on another storage of the same
 * model (say q4, served at f32): it loads, since the fingerprint names the model,
 * but its outputs shift by the quantization error. Null when nothing to say.
 */
export function quantizationNotice(adapter: AdapterFile, quantization: string, file: string): string | null {
  const trained = adapter.metadata.quantization;
  if (!trained || trained === quantization) return null;
  return `adapter "${path.basename(file)}" was trained on the ${trained} base; using it with the ${quantization} base`;
}

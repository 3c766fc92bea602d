// Model cards for the worker's request thread: what a model is (context, shape,
// fingerprint, fill-in-the-middle tokens) and its tokenizer for counting, read from its
// files by openModel, which reads headers and the tokenizer but no weights. Answered
// while the compute thread runs a job, so the editor can list models and count tokens
// without loading a model for compute.

import * as fs from 'fs';
import { openModel } from '../model/open';
import { resolveModel } from '../model/sources';
import type { BaseModel, TextTokenizer } from '../model/types';
import type { FimTokens, ModelCard } from '../protocol';

/** The fill-in-the-middle token sets we know the prompt format of: Qwen2.5 (and Coder), StarCoder and SmolLM. */
const FIM_TOKEN_SETS: readonly FimTokens[] = [
  { prefix: '<|fim_prefix|>', suffix: '<|fim_suffix|>', middle: '<|fim_middle|>' },
  { prefix: '<fim_prefix>', suffix: '<fim_suffix>', middle: '<fim_middle>' },
];

/** The first FIM token set whose three tokens are all in the vocabulary, or null. */
export function fimTokens(tokenizer: TextTokenizer): FimTokens | null {
  return FIM_TOKEN_SETS.find((set) => [set.prefix, set.suffix, set.middle].every((t) => tokenizer.tokenId(t) !== null)) ?? null;
}

export function modelCard(spec: string, model: BaseModel): ModelCard {
  const c = model.config;
  return {
    name: model.name,
    path: spec,
    fingerprint: model.fingerprint,
    architecture: c.architecture,
    contextLength: c.maxPositions,
    hiddenSize: c.hiddenSize,
    numLayers: c.numLayers,
    numHeads: c.numHeads,
    vocabSize: c.vocabSize,
    hasChatTemplate: model.tokenizer.applyChatTemplate([{ role: 'user', content: 'x' }]) !== null,
    fim: fimTokens(model.tokenizer),
  };
}

/** The most recently opened models by spec; a model whose files changed is opened again. */
export class ModelCards {
  private readonly opened = new Map<string, { stamp: string; model: Promise<BaseModel> }>();

  constructor(private readonly keep = 2) {}

  async card(spec: string): Promise<ModelCard> {
    return modelCard(spec, await this.model(spec));
  }

  async countTokens(spec: string, texts: string[]): Promise<number[]> {
    const { tokenizer } = await this.model(spec);
    return texts.map((t) => tokenizer.encode(t, { addSpecialTokens: false }).length);
  }

  private model(spec: string): Promise<BaseModel> {
    const { location } = resolveModel(spec);
    const st = fs.statSync(location);
    const stamp = `${location}|${st.mtimeMs}|${st.size}`;
    const hit = this.opened.get(spec);
    if (hit && hit.stamp === stamp) {
      this.opened.delete(spec); // most recent last
      this.opened.set(spec, hit);
      return hit.model;
    }
    const model = openModel(spec);
    // A failed open is not kept: the next request tries again (the user may fix the files).
    model.catch(() => this.opened.get(spec)?.model === model && this.opened.delete(spec));
    this.opened.set(spec, { stamp, model });
    while (this.opened.size > this.keep) this.opened.delete(this.opened.keys().next().value!);
    return model;
  }
}

// Many seeded answers at once, decoded together through the KV cache: the reference
// adapter's own answers that a refinement keeps close to (src/train/trainer.ts, `anchor`),
// and the style benchmark's samples.

import type { AdapterWeights } from '../adapter/types';
import type { PreferenceRecord, PromptCompletionRecord } from '../data/records';
import type { Engine } from '../engine/engine';
import { stopTokenIds } from '../model/generation';
import { Sampler } from './sampler';

export interface AnswerOptions {
  temperature: number;
  topP: number;
  /** Answer i draws from seed + i, so an answer does not depend on the batch it ran in. */
  seed: number;
  /** New tokens per answer at most; never past the model's context. */
  maxNewTokens: number;
  /** Rows decoded together (default 50). */
  batch?: number;
  /** Changes each next-token logit vector before temperature and top-p (Hugging Face's logits processors). */
  logitsProcessor?: (logits: Float32Array) => Float32Array;
  signal?: AbortSignal;
}

/**
 * One answer per prompt (token ids, BOS included as the tokenizer adds it), each ending
 * before the first stop id: EOS, or BOS, with which llama2.c story models end a story.
 * @returns the new ids of each answer, without the stop id
 */
export async function sampleAnswers(
  engine: Engine,
  prompts: number[][],
  adapter: AdapterWeights | null,
  opts: AnswerOptions,
): Promise<number[][]> {
  const ends = stopTokenIds(engine.model.generation, { stopOnBos: true });
  const context = engine.model.config.maxPositions;
  const width = opts.batch ?? 50;
  const answers: number[][] = [];
  for (let first = 0; first < prompts.length; first += width) {
    const rows = prompts.slice(first, first + width);
    const samplers = rows.map((_, b) => new Sampler({ temperature: opts.temperature, topP: opts.topP, seed: opts.seed + first + b }));
    const ids: number[][] = rows.map(() => []);
    // Rows still decoding, in the state's row order; a row leaves at a stop id, at maxNewTokens,
    // or when its next token would not fit the context (rows' prompts differ in length).
    const room = rows.map((p) => Math.min(opts.maxNewTokens, context - p.length));
    let live = rows.map((_, b) => b).filter((b) => room[b] > 0);
    if (live.length === 0) {
      answers.push(...ids);
      continue;
    }
    let { state, logits } = await engine.prefill(
      live.map((b) => rows[b]),
      live.map(() => adapter),
    );
    while (live.length > 0) {
      if (opts.signal?.aborted) throw new DOMException('sampling cancelled', 'AbortError');
      const change = opts.logitsProcessor ?? ((z: Float32Array) => z);
      const next = live.map((b, r) => samplers[b].pick(change(logits[r]), []));
      const keep: number[] = [];
      live.forEach((b, r) => {
        if (ends.has(next[r])) return;
        ids[b].push(next[r]);
        if (ids[b].length < room[b]) keep.push(r);
      });
      if (keep.length === 0) break;
      if (keep.length < live.length) state = engine.keepRows(state, keep);
      live = keep.map((r) => live[r]);
      logits = await engine.decode(
        state,
        keep.map((r) => next[r]),
      );
    }
    answers.push(...ids);
  }
  return answers;
}

/**
 * `perPair` answers of `reference` to each pair's prompt, as long as the longest rejected answer
 * at most, sampled at temperature 1 without truncation (the reference's own distribution): the
 * anchor of a refinement (TrainOptions.anchor).
 */
export async function referenceAnswers(
  engine: Engine,
  pairs: PreferenceRecord[],
  reference: AdapterWeights | null,
  opts: { perPair: number; seed: number; signal?: AbortSignal },
): Promise<PromptCompletionRecord[]> {
  const { tokenizer } = engine.model;
  const prompts = pairs.flatMap((p) => Array<string>(opts.perPair).fill(p.prompt));
  const longest = Math.max(0, ...pairs.map((p) => tokenizer.encode(p.rejected).length));
  const promptIds = prompts.map((p) => tokenizer.encode(p));
  const answers = await sampleAnswers(engine, promptIds, reference, {
    temperature: 1,
    topP: 1,
    seed: opts.seed,
    maxNewTokens: longest,
    signal: opts.signal,
  });
  // Decoded with the prompt, as the pairs' answers are, so that a leading space is the answer's.
  return answers.map((ids, i) => {
    const text = tokenizer.decode([...promptIds[i], ...ids], { skipSpecialTokens: true });
    return {
      prompt: prompts[i],
      completion: text.startsWith(prompts[i]) ? text.slice(prompts[i].length) : tokenizer.decode(ids, { skipSpecialTokens: true }),
    };
  });
}

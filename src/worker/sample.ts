// The training view's before/after sample: one fixed prompt taken from the training data,
// continued with one fixed seed by the starting point and by the adapter at each epoch's end,
// so the user sees whether the style takes (issue 11, item 5). Same seed, same prompt: the
// texts differ only by what the adapter changed.

import type { AdapterWeights } from '../adapter/types';
import type { RecordSet } from '../data/records';
import type { Engine } from '../engine/engine';
import { fitConversation } from '../generate/chat';
import { generate } from '../generate/generate';

/** Short enough to cost little per epoch, long enough to show a sentence or two. */
export const TRAIN_SAMPLE = { maxNewTokens: 48, temperature: 0.8, topP: 0.9, seed: 0 };

/** Words of a plain text used as its prompt (as the stories-style prompt-completion files do). */
const TEXT_PROMPT_WORDS = 4;

export interface SamplePrompt {
  /** What the user sees as the prompt. */
  text: string;
  ids: number[];
}

/** The first record's prompt: its user turn, its prompt, or the first words of its text. */
export function samplePrompt(engine: Engine, set: RecordSet): SamplePrompt | null {
  const model = engine.model;
  const plain = (text: string): SamplePrompt | null => (text.trim() ? { text, ids: model.tokenizer.encode(text) } : null);
  const firstWords = (text: string) =>
    text
      .split(/(?<=\S)(?=\s)/)
      .slice(0, TEXT_PROMPT_WORDS)
      .join('');
  if (set.records.length === 0) return null;
  switch (set.form) {
    case 'text':
      return plain(firstWords(set.records[0].text));
    case 'prompt-completion':
      return plain(set.records[0].prompt) ?? plain(firstWords(set.records[0].completion));
    case 'preference':
      return plain(set.records[0].prompt) ?? plain(firstWords(set.records[0].chosen));
    case 'messages': {
      const messages = set.records[0].messages;
      const answer = messages.findIndex((m) => m.role === 'assistant');
      const asked = messages.slice(0, answer < 0 ? messages.length : answer);
      if (!asked.some((m) => m.role === 'user')) return null;
      return { text: asked[asked.length - 1].content, ids: fitConversation(model, asked, TRAIN_SAMPLE.maxNewTokens).ids };
    }
  }
}

/** The prompt's continuation by `adapter` (null: the base model). */
export async function sampleText(
  engine: Engine,
  prompt: SamplePrompt,
  adapter: AdapterWeights | null,
  signal?: AbortSignal,
): Promise<string> {
  const out = await generate(engine, prompt.ids, adapter, { ...TRAIN_SAMPLE, stopAtBos: true, signal });
  return out.text;
}

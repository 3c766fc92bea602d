// Tokenises records into training examples: token ids plus, per token, whether
// the model is trained to produce it (SPEC §2: prompt and non-assistant tokens
// are not scored). Alignment to next-token targets happens in batches.ts.

import type { ChatMessage, TextTokenizer } from '../model/types';
import { encodeSegments, leadingSpecialIds, type SegmentedIds } from './segments';
import type { MessagesRecord, PreferenceRecord, PromptCompletionRecord, RecordForm, SftRecord, TextRecord } from './records';

export interface Example {
  ids: number[];
  /** isTarget[i] = 1 when token i is one the model must learn to produce. */
  isTarget: Uint8Array;
}

export interface PreferencePair {
  chosen: Example;
  rejected: Example;
}

export interface ExampleOptions {
  /** Longest sequence kept, in tokens (BOS included); longer ones keep their start. */
  maxLen: number;
  /**
   * The model's end-of-text token, appended as a target to {text} and
   * {prompt, completion} (and both answers of a preference pair) unless the text
   * already ends with it, as TRL does, so an adapter learns where answers stop.
   * Chat templates mark the end of assistant turns themselves. Cut by truncation
   * like any other token: a cut text has not ended.
   */
  endId?: number | null;
}

export interface Tokenized<T> {
  items: T[];
  /** Records cut to maxLen (and still kept). */
  truncated: number;
  /** Records left with no scorable target (after truncation, or none to begin with). */
  dropped: number;
}

export function toExamples(
  records: SftRecord[],
  form: Exclude<RecordForm, 'preference'>,
  tokenizer: TextTokenizer,
  opts: ExampleOptions,
): Tokenized<Example> {
  const bos = leadingSpecialIds(tokenizer);
  const end = opts.endId ?? null;
  const encodeOne = (r: SftRecord): Example => {
    if (form === 'text') return withEnd(promptCompletion(tokenizer, bos, '', (r as TextRecord).text), end);
    if (form === 'prompt-completion') {
      const pc = r as PromptCompletionRecord;
      return withEnd(promptCompletion(tokenizer, bos, pc.prompt, pc.completion), end);
    }
    return chatExample(tokenizer, bos, (r as MessagesRecord).messages);
  };
  return finish(records.map(encodeOne), (e) => [e], opts.maxLen);
}

export function toPreferencePairs(records: PreferenceRecord[], tokenizer: TextTokenizer, opts: ExampleOptions): Tokenized<PreferencePair> {
  const bos = leadingSpecialIds(tokenizer);
  const end = opts.endId ?? null;
  const pairs = records.map((r) => ({
    chosen: withEnd(promptCompletion(tokenizer, bos, r.prompt, r.chosen), end),
    rejected: withEnd(promptCompletion(tokenizer, bos, r.prompt, r.rejected), end),
  }));
  return finish(pairs, (p) => [p.chosen, p.rejected], opts.maxLen);
}

/**
 * BOS + prompt + completion with the completion tokens as targets; an empty prompt makes every token
 * after BOS a target. A prompt that starts with BOS itself (a conversation rendered by a chat template,
 * as the chat panel records it) does not get a second one: the model saw it once when it answered.
 */
function promptCompletion(tokenizer: TextTokenizer, bos: number[], prompt: string, completion: string): Example {
  const segments = prompt === '' ? [completion] : [prompt, completion];
  const own = bos.length > 0 && prompt !== '' ? tokenizer.encode(prompt, { addSpecialTokens: false }).slice(0, bos.length) : [];
  const leading = own.length === bos.length && own.every((id, i) => id === bos[i]) ? [] : bos;
  const encoded = encodeSegments(tokenizer, segments, leading);
  return fromSegments(
    encoded,
    segments.map((_, i) => i === segments.length - 1),
  );
}

/** The end token appended as a target, unless absent or already there. */
function withEnd(example: Example, end: number | null): Example {
  if (end === null || example.ids[example.ids.length - 1] === end) return example;
  const isTarget = new Uint8Array(example.ids.length + 1);
  isTarget.set(example.isTarget);
  isTarget[example.ids.length] = 1;
  return { ids: [...example.ids, end], isTarget };
}

/**
 * Models without a chat template get this plain format, one "<role>: content"
 * line per message, and a trailing "assistant: " as the generation prompt.
 * Generation must render conversations the same way.
 */
export function fallbackChatTemplate(messages: ChatMessage[], addGenerationPrompt: boolean): string {
  const lines = messages.map((m) => `${m.role}: ${m.content}\n`).join('');
  return addGenerationPrompt ? `${lines}assistant: ` : lines;
}

/**
 * Renders the conversation incrementally: the text before an assistant message is
 * the rendering of the earlier messages with the generation prompt, and its end is
 * the rendering including it, so the assistant span (with its end-of-turn marker)
 * is exact.
 */
function chatExample(tokenizer: TextTokenizer, bos: number[], messages: ChatMessage[]): Example {
  const hasTemplate = tokenizer.applyChatTemplate(messages) !== null;
  const render = (upTo: number, generationPrompt: boolean): string => {
    const head = messages.slice(0, upTo);
    return hasTemplate
      ? (tokenizer.applyChatTemplate(head, { addGenerationPrompt: generationPrompt }) ?? '')
      : fallbackChatTemplate(head, generationPrompt);
  };
  const full = render(messages.length, false);
  const segments: string[] = [];
  const isTarget: boolean[] = [];
  let at = 0;
  messages.forEach((m, i) => {
    if (m.role !== 'assistant') return;
    const start = spanEnd(full, render(i, true), i);
    const end = spanEnd(full, render(i + 1, false), i);
    segments.push(full.slice(at, start), full.slice(start, end));
    isTarget.push(false, true);
    at = end;
  });
  segments.push(full.slice(at));
  isTarget.push(false);
  // Chat templates write BOS themselves; only the fallback needs the tokenizer's.
  return fromSegments(encodeSegments(tokenizer, segments, hasTemplate ? [] : bos), isTarget);
}

/** Where a partial rendering ends inside the full one; templates that rewrite earlier turns cannot be masked exactly. */
function spanEnd(full: string, partial: string, message: number): number {
  if (!full.startsWith(partial)) {
    throw new Error(`chat template renders messages[${message}] differently depending on what follows; cannot mark its tokens as targets`);
  }
  return partial.length;
}

function fromSegments(encoded: SegmentedIds, segmentIsTarget: boolean[]): Example {
  const isTarget = new Uint8Array(encoded.ids.length);
  encoded.starts.forEach((start, i) => {
    const end = encoded.starts[i + 1] ?? encoded.ids.length;
    if (segmentIsTarget[i]) isTarget.fill(1, start, end);
  });
  return { ids: encoded.ids, isTarget };
}

function truncate(example: Example, maxLen: number): Example {
  return { ids: example.ids.slice(0, maxLen), isTarget: example.isTarget.slice(0, maxLen) };
}

/** A target at position 0 has no preceding position to predict it, so it does not count. */
function hasScorableTarget(example: Example): boolean {
  return example.isTarget.indexOf(1, 1) !== -1;
}

/** Truncates every example of an item and drops items where any example lost all its targets. */
function finish<T extends Example | PreferencePair>(items: T[], parts: (item: T) => Example[], maxLen: number): Tokenized<T> {
  if (!(maxLen >= 2)) throw new RangeError(`maxLen must be at least 2, got ${maxLen}`);
  const result: Tokenized<T> = { items: [], truncated: 0, dropped: 0 };
  for (const item of items) {
    const long = parts(item).some((e) => e.ids.length > maxLen);
    const cut = cutItem(item, maxLen);
    if (!parts(cut).every(hasScorableTarget)) {
      result.dropped++;
      continue;
    }
    if (long) result.truncated++;
    result.items.push(cut);
  }
  return result;
}

function cutItem<T extends Example | PreferencePair>(item: T, maxLen: number): T {
  if ('ids' in item) return truncate(item, maxLen) as T;
  return { chosen: truncate(item.chosen, maxLen), rejected: truncate(item.rejected, maxLen) } as T;
}

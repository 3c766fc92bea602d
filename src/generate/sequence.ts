// One sequence being generated: its sampler, stop conditions, streamed text and
// finish reason. The decoding loop (one request in generate.ts, many batched in
// batcher.ts) feeds it each step's logits and gets back the next token to feed.

import { AdapterError } from '../adapter/errors';
import { GENERATION_DEFAULTS } from './defaults';
import type { BaseModel, TextTokenizer } from '../model/types';
import { Sampler } from './sampler';
import { stopTokenIds } from '../model/generation';
import { StopMatcher } from './stop';

export interface GenerateOptions {
  /** Default: generation_config's max_new_tokens, else GENERATION_DEFAULTS'; never past the model's context. */
  maxNewTokens?: number;
  /** 0 = greedy. Default: generation_config's temperature, else GENERATION_DEFAULTS'. */
  temperature?: number;
  topK?: number;
  /** Default: generation_config's top_p, else GENERATION_DEFAULTS'. */
  topP?: number;
  repetitionPenalty?: number;
  seed?: number;
  /** Generation ends before the first occurrence of any of these strings (which is not emitted). */
  stop?: string[];
  /** Stop at the model's EOS ids (default true). */
  stopAtEos?: boolean;
  /** Also stop at BOS: llama2.c story models end a story with it. */
  stopAtBos?: boolean;
  onText?: (delta: string) => void;
  signal?: AbortSignal;
  /** The adapter applied, named in errors (its file name); absent when there is none. */
  adapterName?: string;
}

export type FinishReason = 'eos' | 'length' | 'stop' | 'cancelled';

export interface GenerateResult {
  /** The new token ids (without the prompt; an ending EOS is not included). */
  ids: number[];
  /** Their text, cut before a stop string. */
  text: string;
  finishReason: FinishReason;
}

/** A prompt the model cannot continue: empty, or as long as its context or longer (a RangeError, as bad settings are). */
export class PromptError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = 'PromptError';
  }
}

/** Throws a PromptError unless `promptIds` leaves room in `model`'s context for at least one new token. */
export function checkPrompt(model: BaseModel, promptIds: number[]): void {
  const context = model.config.maxPositions;
  if (promptIds.length === 0) throw new PromptError('the prompt is empty');
  if (promptIds.length >= context) {
    throw new PromptError(
      `the prompt has ${promptIds.length} tokens; the model's context is ${context} tokens (${model.name}), so shorten the prompt`,
    );
  }
}

export class Sequence {
  readonly ids: number[] = [];
  private text = '';
  private finish: FinishReason | null = null;
  private readonly limit: number;
  private readonly sampler: Sampler;
  private readonly ends: ReadonlySet<number>;
  private readonly stops: StopMatcher;
  private readonly stream: TextStream;

  /** Throws (RangeError) on an empty or too long prompt and on invalid sampling settings. */
  constructor(
    model: BaseModel,
    readonly promptIds: number[],
    private readonly opts: GenerateOptions = {},
  ) {
    const context = model.config.maxPositions;
    checkPrompt(model, promptIds);
    this.limit = Math.min(
      opts.maxNewTokens ?? model.generation.maxNewTokens ?? GENERATION_DEFAULTS.maxNewTokens,
      context - promptIds.length,
    );
    this.sampler = new Sampler({
      temperature: opts.temperature ?? model.generation.temperature ?? GENERATION_DEFAULTS.temperature,
      topK: opts.topK ?? model.generation.topK,
      topP: opts.topP ?? model.generation.topP ?? GENERATION_DEFAULTS.topP,
      repetitionPenalty: opts.repetitionPenalty ?? model.generation.repetitionPenalty,
      seed: opts.seed ?? 0,
    });
    this.ends = opts.stopAtEos === false ? new Set<number>() : stopTokenIds(model.generation, { stopOnBos: opts.stopAtBos });
    this.stops = new StopMatcher(opts.stop ?? []);
    this.stream = new TextStream(model.tokenizer, promptIds);
    if (this.limit <= 0) this.end('length');
    else this.checkCancelled();
  }

  /** True once finished: the loop must not feed it again. */
  get done(): boolean {
    return this.finish !== null;
  }

  /** Ends the sequence as cancelled when its signal fired; true when finished. */
  checkCancelled(): boolean {
    if (!this.done && this.opts.signal?.aborted) this.end('cancelled');
    return this.done;
  }

  /** Takes the next-token logits; returns the token to feed back, or null once finished. */
  next(logits: Float32Array): number | null {
    if (this.checkCancelled()) return null;
    checkFinite(logits, this.ids.length, this.opts.adapterName ?? null);
    const id = this.sampler.pick(logits, this.promptIds.concat(this.ids));
    if (this.ends.has(id)) return this.end('eos');
    this.ids.push(id);
    this.emit(this.stops.push(this.stream.push(id)));
    if (this.stops.stopped) return this.end('stop');
    if (this.ids.length >= this.limit) return this.end('length');
    return id;
  }

  result(): GenerateResult {
    if (this.finish === null) throw new Error('the sequence is still being generated');
    return { ids: this.ids, text: this.text, finishReason: this.finish };
  }

  /** Ends generation: the text held back for a possible stop string is emitted unless one matched. */
  private end(reason: FinishReason): null {
    this.finish = reason;
    if (reason !== 'stop') this.emit(this.stops.push(this.stream.flush()) + this.stops.flush());
    return null;
  }

  private emit(delta: string): void {
    if (!delta) return;
    this.text += delta;
    this.opts.onText?.(delta);
  }
}

/**
 * Incremental detokenisation. Decoding a token alone loses context (leading
 * spaces, multi-byte characters split over byte-fallback tokens), so the text
 * is decoded together with a few tokens before it and diffed; a trailing
 * U+FFFD means an incomplete character and is held back.
 */
class TextStream {
  private readonly context: number[];
  private readonly ids: number[] = [];
  private shown = 0;
  private readonly base: number;

  constructor(
    private readonly tokenizer: TextTokenizer,
    prompt: number[],
  ) {
    this.context = prompt.slice(-4);
    this.base = this.decode().length;
  }

  push(id: number): string {
    this.ids.push(id);
    const text = this.decode();
    const stable = text.endsWith('\uFFFD') ? text.length - 1 : text.length;
    return this.take(text, stable);
  }

  flush(): string {
    const text = this.decode();
    return this.take(text, text.length);
  }

  private take(text: string, upTo: number): string {
    const from = this.base + this.shown;
    if (upTo <= from) return '';
    this.shown = upTo - this.base;
    return text.slice(from, upTo);
  }

  private decode(): string {
    return this.tokenizer.decode([...this.context, ...this.ids], { skipSpecialTokens: true });
  }
}

/**
 * Stops generation on NaN or infinite logits, which would otherwise sample garbage or blank text.
 * With an adapter the adapter is to blame (huge but finite values overflow the attention); without
 * one, the model's weights are.
 */
function checkFinite(logits: Float32Array, step: number, adapter: string | null): void {
  const i = logits.findIndex((v) => !Number.isFinite(v));
  if (i < 0) return;
  const what = `the logits are not finite (${logits[i]} for token ${i}) after ${step} generated tokens`;
  if (adapter !== null) throw new AdapterError(`adapter "${adapter}": ${what}; its values are too large for this model`);
  throw new Error(`${what} without an adapter: the model's weights produce overflows`);
}

// Autoregressive generation on the engine: prefill once, then one decode step
// per token through the KV cache, streaming text as it becomes stable.

import type { Engine } from '../engine/engine';
import type { AdapterWeights } from '../engine/types';
import type { TextTokenizer } from '../model/types';
import { Sampler } from './sampler';
import { StopMatcher, stopTokenIds } from './stop';

export interface GenerateOptions {
  /** Default: generation_config's max_new_tokens, else 256; never past the model's context. */
  maxNewTokens?: number;
  /** 0 = greedy. Default: generation_config's temperature, else 0. */
  temperature?: number;
  topK?: number;
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
}

export type FinishReason = 'eos' | 'length' | 'stop' | 'cancelled';

export interface GenerateResult {
  /** The new token ids (without the prompt; an ending EOS is not included). */
  ids: number[];
  /** Their text, cut before a stop string. */
  text: string;
  finishReason: FinishReason;
}

export async function generate(engine: Engine, promptIds: number[], adapter: AdapterWeights | null, opts: GenerateOptions = {}): Promise<GenerateResult> {
  const { model } = engine;
  const context = model.config.maxPositions;
  if (promptIds.length === 0) throw new Error('the prompt is empty');
  if (promptIds.length >= context) throw new Error(`the prompt has ${promptIds.length} tokens; the model's context is ${context}`);
  const limit = Math.min(opts.maxNewTokens ?? model.generation.maxNewTokens ?? 256, context - promptIds.length);
  const sampler = new Sampler({
    temperature: opts.temperature ?? model.generation.temperature ?? 0,
    topK: opts.topK ?? model.generation.topK,
    topP: opts.topP ?? model.generation.topP,
    repetitionPenalty: opts.repetitionPenalty ?? model.generation.repetitionPenalty,
    seed: opts.seed ?? 0,
  });
  const ends = opts.stopAtEos === false ? new Set<number>() : stopTokenIds(model.generation, { stopOnBos: opts.stopAtBos });
  const stops = new StopMatcher(opts.stop ?? []);
  const stream = new TextStream(model.tokenizer, promptIds);
  const ids: number[] = [];
  let text = '';
  const emit = (delta: string) => {
    if (!delta) return;
    text += delta;
    opts.onText?.(delta);
  };

  let { state, logits } = await engine.prefill([promptIds], [adapter]);
  let finish: FinishReason = 'length';
  while (ids.length < limit) {
    if (opts.signal?.aborted) {
      finish = 'cancelled';
      break;
    }
    const next = sampler.pick(logits[0], [...promptIds, ...ids]);
    if (ends.has(next)) {
      finish = 'eos';
      break;
    }
    ids.push(next);
    emit(stops.push(stream.push(next)));
    if (stops.stopped) {
      finish = 'stop';
      break;
    }
    if (ids.length < limit) [logits[0]] = await engine.decode(state, [next]);
  }
  if (finish !== 'stop') emit(stops.push(stream.flush()) + stops.flush());
  return { ids, text, finishReason: finish };
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

// The OpenAI API surface of `aligner serve`: request bodies checked and turned
// into prompts and generation options, responses and stream chunks in the shapes
// of the official client's types, and errors in OpenAI's error JSON.

import { randomUUID } from 'crypto';
import type { ChatCompletion, ChatCompletionChunk } from 'openai/resources/chat/completions';
import type { Completion } from 'openai/resources/completions';
import type { Model } from 'openai/resources/models';
import type { GenerateOptions, GenerateResult } from '../generate/generate';
import type { ChatMessage } from '../model/types';
import type { ServedModel } from './models';

/** An error answered as `{ error: { message, type, param, code } }` with an HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string,
    readonly param: string | null = null,
    readonly type = status === 401
      ? 'authentication_error'
      : status === 429
        ? 'rate_limit_error'
        : status >= 500
          ? 'server_error'
          : 'invalid_request_error',
  ) {
    super(message);
  }

  toJSON() {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

const invalid = (param: string, message: string) => new ApiError(400, `${param}: ${message}`, 'invalid_value', param);

/** What both endpoints share once the body is checked. */
export interface ParsedRequest {
  model: string;
  stream: boolean;
  includeUsage: boolean;
  options: Pick<GenerateOptions, 'maxNewTokens' | 'temperature' | 'topP' | 'topK' | 'repetitionPenalty' | 'seed' | 'stop'>;
}

export interface ParsedChat extends ParsedRequest {
  messages: ChatMessage[];
}

export interface ParsedCompletion extends ParsedRequest {
  prompt: string;
}

type Body = Record<string, unknown>;

function asBody(body: unknown): Body {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new ApiError(400, 'the request body must be a JSON object', 'invalid_body');
  return body as Body;
}

function number(
  body: Body,
  key: string,
  min: number,
  max: number,
  opts: { integer?: boolean; minExclusive?: boolean } = {},
): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  const ok =
    typeof v === 'number' &&
    Number.isFinite(v) &&
    (opts.minExclusive ? v > min : v >= min) &&
    v <= max &&
    (!opts.integer || Number.isInteger(v));
  if (!ok)
    throw invalid(
      key,
      `expected ${opts.integer ? 'an integer' : 'a number'} in ${opts.minExclusive ? '(' : '['}${min}, ${max}], got ${JSON.stringify(v)}`,
    );
  return v as number;
}

function common(body: Body): ParsedRequest {
  if (typeof body.model !== 'string' || body.model === '') throw invalid('model', 'expected a model id (see GET /v1/models)');
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean')
    throw invalid('stream', 'expected true or false');
  number(body, 'n', 1, 1, { integer: true }); // one choice per request
  if (body.logprobs !== undefined && body.logprobs !== null && body.logprobs !== false) throw invalid('logprobs', 'is not supported');
  const streamOptions = body.stream_options as { include_usage?: unknown } | undefined;
  return {
    model: body.model,
    stream: body.stream === true,
    includeUsage: body.stream === true && streamOptions?.include_usage === true,
    options: samplingOptions(body),
  };
}

/**
 * The sampling fields of a request, by OpenAI's names (`temperature`, `top_p`, `max_tokens`, `stop`,
 * `seed`, ...): the server's bodies, and the model options of the editor's Language Model API.
 */
export function samplingOptions(body: Record<string, unknown>): ParsedRequest['options'] {
  for (const key of ['frequency_penalty', 'presence_penalty']) {
    if (body[key] !== undefined && body[key] !== null && body[key] !== 0) throw invalid(key, 'is not supported (use repetition_penalty)');
  }
  let stop: string[] | undefined;
  if (typeof body.stop === 'string') stop = [body.stop];
  else if (Array.isArray(body.stop)) stop = body.stop as string[];
  else if (body.stop !== undefined && body.stop !== null) throw invalid('stop', 'expected a string or an array of strings');
  if (stop && (stop.length > 16 || stop.some((s) => typeof s !== 'string' || s === '')))
    throw invalid('stop', 'expected at most 16 non-empty strings');
  return {
    maxNewTokens: number(body, 'max_completion_tokens', 1, 1e6, { integer: true }) ?? number(body, 'max_tokens', 1, 1e6, { integer: true }),
    temperature: number(body, 'temperature', 0, 2),
    topP: number(body, 'top_p', 0, 1, { minExclusive: true }),
    // Not OpenAI's, but common in local servers (vLLM, llama.cpp).
    topK: number(body, 'top_k', 0, 1e9, { integer: true }),
    repetitionPenalty: number(body, 'repetition_penalty', 0, 100, { minExclusive: true }),
    seed: number(body, 'seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, { integer: true }),
    stop,
  };
}

/** Message content: a string, or text parts (other part kinds are refused). */
function messageText(content: unknown, param: string): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part, i) => {
        const p = part as { type?: unknown; text?: unknown };
        if (p?.type !== 'text' || typeof p.text !== 'string') throw invalid(`${param}[${i}]`, 'only text content parts are supported');
        return p.text;
      })
      .join('');
  }
  throw invalid(param, 'expected a string or an array of text parts');
}

export function parseChat(raw: unknown): ParsedChat {
  const body = asBody(raw);
  const req = common(body);
  if (!Array.isArray(body.messages) || body.messages.length === 0) throw invalid('messages', 'expected a non-empty array of messages');
  const messages = body.messages.map((m: unknown, i): ChatMessage => {
    const msg = m as { role?: unknown; content?: unknown };
    const role = msg?.role === 'developer' ? 'system' : msg?.role;
    if (role !== 'system' && role !== 'user' && role !== 'assistant') {
      throw invalid(`messages[${i}].role`, `expected system, developer, user or assistant, got ${JSON.stringify(msg?.role)}`);
    }
    return { role, content: messageText(msg.content, `messages[${i}].content`) };
  });
  return { ...req, messages };
}

export function parseCompletion(raw: unknown): ParsedCompletion {
  const body = asBody(raw);
  const req = common(body);
  const p = body.prompt;
  const prompt = typeof p === 'string' ? p : Array.isArray(p) && p.length === 1 && typeof p[0] === 'string' ? p[0] : undefined;
  if (prompt === undefined) throw invalid('prompt', 'expected a string (or an array of one string)');
  if (body.echo === true) throw invalid('echo', 'is not supported');
  if (body.suffix !== undefined && body.suffix !== null) throw invalid('suffix', 'is not supported');
  return { ...req, prompt };
}

// ---------------------------------------------------------------- responses

export function modelObject(m: ServedModel): Model {
  return { id: m.id, object: 'model', created: m.created, owned_by: 'aligner' };
}

type Finish = 'stop' | 'length';

/** EOS and stop strings are both "stop" to OpenAI clients. */
export function finishReason(r: GenerateResult): Finish {
  return r.finishReason === 'length' ? 'length' : 'stop';
}

function usage(promptTokens: number, r: GenerateResult) {
  return { prompt_tokens: promptTokens, completion_tokens: r.ids.length, total_tokens: promptTokens + r.ids.length };
}

/** Builds the objects of one response: the id and creation time are shared by all its chunks. */
export class ResponseShapes {
  readonly created = Math.floor(Date.now() / 1000);
  readonly id: string;

  constructor(
    private readonly kind: 'chat' | 'completion',
    private readonly model: string,
  ) {
    this.id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID()}`;
  }

  whole(r: GenerateResult, promptTokens: number): ChatCompletion | Completion {
    const base = { id: this.id, created: this.created, model: this.model, usage: usage(promptTokens, r) };
    if (this.kind === 'chat') {
      return {
        ...base,
        object: 'chat.completion',
        choices: [
          { index: 0, message: { role: 'assistant', content: r.text, refusal: null }, finish_reason: finishReason(r), logprobs: null },
        ],
      };
    }
    return { ...base, object: 'text_completion', choices: [{ index: 0, text: r.text, finish_reason: finishReason(r), logprobs: null }] };
  }

  /** A stream chunk with text (the first chat chunk also carries the role), or the last one with the finish reason. */
  chunk(text: string, opts: { first?: boolean; finish?: Finish } = {}): ChatCompletionChunk | Completion {
    const base = { id: this.id, created: this.created, model: this.model };
    const finish = opts.finish ?? null;
    if (this.kind === 'chat') {
      const delta = opts.finish ? {} : opts.first ? { role: 'assistant' as const, content: text } : { content: text };
      return { ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }] };
    }
    return { ...base, object: 'text_completion', choices: [{ index: 0, text, finish_reason: finish as Finish, logprobs: null }] };
  }

  /** The extra last chunk of `stream_options.include_usage`: no choices, only usage. */
  usageChunk(r: GenerateResult, promptTokens: number): ChatCompletionChunk | Completion {
    const base = { id: this.id, created: this.created, model: this.model, usage: usage(promptTokens, r), choices: [] };
    return this.kind === 'chat' ? { ...base, object: 'chat.completion.chunk' } : { ...base, object: 'text_completion' };
  }
}

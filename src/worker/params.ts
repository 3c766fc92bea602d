// The params of every JSON-RPC request, checked before a handler sees them: any client can
// send anything, so each field is checked against the protocol's type and range, and a
// mismatch is an InvalidInput error naming the field and quoting at most a short excerpt.
// Unknown fields are ignored (a newer client may send more).

import { ResponseError } from 'vscode-languageserver/node';
import { MAX_TOKENS } from '../adapter/types';
import { excerpt } from '../util/json';
import { DEVICES } from '../engine/types';
import {
  ErrorCodes,
  type AdapterImportParams,
  type AdapterListParams,
  type CancelParams,
  type CountTokensParams,
  type ChatMessage,
  type QuantizationSetting,
  type GenerationParams,
  type LoadModelParams,
  type RefineParams,
  type AdapterRevertParams,
  type TrainOptions,
  type TrainParams,
  type TrainSource,
} from '../protocol';

type Obj = Record<string, unknown>;

function fail(message: string): never {
  throw new ResponseError(ErrorCodes.InvalidInput, message);
}

function object(v: unknown, name: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(`${name} must be an object, got ${excerpt(v)}`);
  return v as Obj;
}

function string(v: unknown, name: string, max = 1_000_000): string {
  if (typeof v !== 'string') fail(`${name} must be a string, got ${excerpt(v)}`);
  if (v.length > max) fail(`${name} is ${v.length} characters long; at most ${max} are allowed`);
  return v;
}

/** A file or folder path: non-empty, no NUL byte (the file system refuses those). */
function filePath(v: unknown, name: string): string {
  const s = string(v, name, 4096);
  if (s === '' || s.includes('\0')) fail(`${name} must be a file path, got ${excerpt(s)}`);
  return s;
}

function strings(v: unknown, name: string, maxItems: number, each: (s: unknown, n: string) => string): string[] {
  if (!Array.isArray(v)) fail(`${name} must be an array of strings, got ${excerpt(v)}`);
  if (v.length > maxItems) fail(`${name} has ${v.length} entries; at most ${maxItems} are allowed`);
  return v.map((s, i) => each(s, `${name}[${i}]`));
}

function number(v: unknown, name: string, ok: (n: number) => boolean, rule: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) fail(`${name} must be ${rule}, got ${excerpt(v)}`);
  return v;
}

const int =
  (min: number, max = Number.MAX_SAFE_INTEGER) =>
  (v: unknown, name: string) =>
    number(
      v,
      name,
      (n) => Number.isSafeInteger(n) && n >= min && n <= max,
      max < Number.MAX_SAFE_INTEGER ? `an integer from ${min} to ${max}` : `an integer >= ${min}`,
    );

function boolean(v: unknown, name: string): boolean {
  if (typeof v !== 'boolean') fail(`${name} must be true or false, got ${excerpt(v)}`);
  return v;
}

function oneOf<T extends string>(values: readonly T[]) {
  return (v: unknown, name: string): T => {
    if (!values.includes(v as T)) fail(`${name} must be one of ${values.join(', ')}, got ${excerpt(v)}`);
    return v as T;
  };
}

/** `check(obj[key])` when the field is present (undefined counts as absent). */
function optional<T>(obj: Obj, key: string, name: string, check: (v: unknown, name: string) => T): T | undefined {
  return obj[key] === undefined ? undefined : check(obj[key], `${name}.${key}`);
}

const requestId = (v: unknown, name: string) => string(v, name, 200);

export function loadModelParams(p: unknown): LoadModelParams {
  const o = object(p, 'loadModel params');
  return {
    path: filePath(o.path, 'loadModel params.path'),
    device: optional(o, 'device', 'loadModel params', oneOf(DEVICES)),
    quantization: optional(o, 'quantization', 'loadModel params', oneOf<QuantizationSetting>(['auto', 'f32', 'q8', 'q4'])),
    workDoneToken: optional(o, 'workDoneToken', 'loadModel params', (v, n) => (typeof v === 'number' ? int(0)(v, n) : string(v, n, 200))),
  };
}

export function generationParams(p: unknown, name = 'params'): GenerationParams {
  const o = object(p, name);
  return {
    maxNewTokens: optional(o, 'maxNewTokens', name, int(1)),
    temperature: optional(o, 'temperature', name, (v, n) => number(v, n, (x) => x >= 0, 'a number >= 0')),
    topK: optional(o, 'topK', name, int(0)),
    topP: optional(o, 'topP', name, (v, n) => number(v, n, (x) => x > 0 && x <= 1, 'a number in (0, 1]')),
    repetitionPenalty: optional(o, 'repetitionPenalty', name, (v, n) => number(v, n, (x) => x > 0, 'a number > 0')),
    seed: optional(o, 'seed', name, int(Number.MIN_SAFE_INTEGER)),
    stop: optional(o, 'stop', name, (v, n) => strings(v, n, 16, stopString)),
  };
}

function stopString(v: unknown, name: string): string {
  const s = string(v, name, 1000);
  if (s === '') fail(`${name} must not be empty`);
  return s;
}

const adapterPath = (v: unknown, name: string) => (v === null ? null : filePath(v, name));

function message(v: unknown, name: string): ChatMessage {
  const o = object(v, name);
  return { role: oneOf(['system', 'user', 'assistant'] as const)(o.role, `${name}.role`), content: string(o.content, `${name}.content`) };
}

export function chatParams(p: unknown): { requestId?: string; messages: ChatMessage[]; adapter: string | null; params: GenerationParams } {
  const o = object(p, 'chat params');
  if (!Array.isArray(o.messages) || o.messages.length === 0) fail('chat needs messages: [{role, content}]');
  if (o.messages.length > 10_000) fail(`chat params.messages has ${o.messages.length} entries; at most 10000 are allowed`);
  const messages = o.messages.map((m, i) => message(m, `chat params.messages[${i}]`));
  if (!messages.some((m) => m.role === 'user')) fail('chat params.messages has no user message');
  return {
    requestId: optional(o, 'requestId', 'chat params', requestId),
    messages,
    adapter: optional(o, 'adapter', 'chat params', adapterPath) ?? null,
    params: o.params === undefined ? {} : generationParams(o.params, 'chat params.params'),
  };
}

export function generateParams(p: unknown): { requestId?: string; prompt: string; adapter: string | null; params: GenerationParams } {
  const o = object(p, 'generate params');
  if (typeof o.prompt !== 'string') fail('generate needs a prompt string');
  return {
    requestId: optional(o, 'requestId', 'generate params', requestId),
    prompt: string(o.prompt, 'generate params.prompt'),
    adapter: optional(o, 'adapter', 'generate params', adapterPath) ?? null,
    params: o.params === undefined ? {} : generationParams(o.params, 'generate params.params'),
  };
}

function trainSource(v: unknown, name: string): TrainSource {
  const o = object(v, name);
  switch (o.kind) {
    case 'jsonl':
      return { kind: 'jsonl', file: filePath(o.file, `${name}.file`), validationFile: optional(o, 'validationFile', name, filePath) };
    case 'files':
      return { kind: 'files', files: strings(o.files, `${name}.files`, 100_000, filePath) };
    case 'texts':
      return { kind: 'texts', texts: strings(o.texts, `${name}.texts`, 1_000_000, string), chunk: optional(o, 'chunk', name, boolean) };
    default:
      return fail(`${name}.kind must be one of jsonl, files, texts, got ${excerpt(o.kind)}`);
  }
}

function trainOptions(v: unknown, name: string): TrainOptions {
  const o = object(v, name);
  const positive = (x: unknown, n: string) => number(x, n, (y) => y > 0, 'a number > 0');
  return {
    method: optional(o, 'method', name, oneOf(['sft', 'dpo'] as const)),
    tokens: optional(o, 'tokens', name, (x, n) => (x === 'auto' ? 'auto' : int(1, MAX_TOKENS)(x, n))),
    startLayer: optional(o, 'startLayer', name, int(0)),
    epochs: optional(o, 'epochs', name, int(1)),
    lr: optional(o, 'lr', name, positive),
    batchSize: optional(o, 'batchSize', name, int(1)),
    maxLen: optional(o, 'maxLen', name, int(2)),
    valSplit: optional(o, 'valSplit', name, (x, n) => number(x, n, (y) => y >= 0 && y < 1, 'a number in [0, 1)')),
    seed: optional(o, 'seed', name, int(Number.MIN_SAFE_INTEGER)),
    steps: optional(o, 'steps', name, int(0)),
  };
}

export function trainParams(p: unknown, validName: (name: string) => boolean): TrainParams {
  const o = object(p, 'train params');
  if (typeof o.name !== 'string' || !validName(o.name)) {
    fail(`Invalid adapter name ${excerpt(o.name)}: use letters, digits, '.', '_', '-' or spaces`);
  }
  return {
    jobId: optional(o, 'jobId', 'train params', requestId) as string,
    name: o.name,
    outDir: filePath(o.outDir, 'train params.outDir'),
    source: trainSource(o.source, 'train params.source'),
    options: o.options === undefined ? {} : trainOptions(o.options, 'train params.options'),
    overwrite: optional(o, 'overwrite', 'train params', boolean),
  };
}

export function cancelParams(p: unknown): CancelParams {
  const o = object(p, 'cancel params');
  return { id: string(o.id, 'cancel params.id', 200) } as CancelParams;
}

export function adapterListParams(p: unknown): AdapterListParams {
  const o = object(p, 'adapters/list params');
  return {
    dirs: strings(o.dirs, 'adapters/list params.dirs', 1000, filePath),
    model: optional(o, 'model', 'adapters/list params', filePath),
  };
}

export function countTokensParams(p: unknown): CountTokensParams {
  const o = object(p, 'countTokens params');
  return {
    path: filePath(o.path, 'countTokens params.path'),
    texts: strings(o.texts, 'countTokens params.texts', 10_000, (v, n) => string(v, n)),
  };
}

/** The params of a request that names one file (an adapter, or a model for describeModel). */
export function pathParams(p: unknown, request: string): { path: string } {
  const o = object(p, `${request} params`);
  return { path: filePath(o.path, `${request} params.path`) };
}

export function adapterImportParams(p: unknown, validName: (name: string) => boolean): AdapterImportParams {
  const o = object(p, 'adapters/import params');
  const name = optional(o, 'name', 'adapters/import params', (v, n) => string(v, n, 200));
  if (name !== undefined && !validName(name)) fail(`Invalid adapter name ${excerpt(name)}`);
  return {
    path: filePath(o.path, 'adapters/import params.path'),
    toDir: filePath(o.toDir, 'adapters/import params.toDir'),
    name,
    overwrite: optional(o, 'overwrite', 'adapters/import params', boolean),
  };
}

export function refineParams(p: unknown): RefineParams {
  const o = object(p, 'refine params');
  const name = 'refine params.options';
  const opts = o.options === undefined ? {} : object(o.options, name);
  const positive = (x: unknown, n: string) => number(x, n, (y) => y > 0, 'a number > 0');
  return {
    jobId: optional(o, 'jobId', 'refine params', requestId) as string,
    adapter: filePath(o.adapter, 'refine params.adapter'),
    pairs: filePath(o.pairs, 'refine params.pairs'),
    options: {
      epochs: optional(opts, 'epochs', name, int(1)),
      steps: optional(opts, 'steps', name, int(0)),
      lr: optional(opts, 'lr', name, positive),
      batchSize: optional(opts, 'batchSize', name, int(1)),
      beta: optional(opts, 'beta', name, positive),
      rpoAlpha: optional(opts, 'rpoAlpha', name, (x, n) => number(x, n, (y) => y >= 0, 'a number >= 0')),
      seed: optional(opts, 'seed', name, int(Number.MIN_SAFE_INTEGER)),
    },
  };
}

export function adapterRevertParams(p: unknown): AdapterRevertParams {
  const o = object(p, 'adapters/revert params');
  return { path: filePath(o.path, 'adapters/revert params.path'), version: filePath(o.version, 'adapters/revert params.version') };
}

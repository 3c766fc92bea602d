// `aligner serve`: an OpenAI-compatible HTTP server on 127.0.0.1 (node:http),
// behind a bearer token. Every request becomes one row of the shared Batcher, so
// concurrent requests for different adapters decode together; when its queue is
// full the answer is 429. Streaming answers are server-sent events.

import { createHash, timingSafeEqual } from 'crypto';
import * as http from 'http';
import type { AddressInfo } from 'net';
import type { Engine } from '../engine/engine';
import { Batcher, QueueFullError } from '../generate/batcher';
import { chatPromptIds } from '../generate/chat';
import type { GenerateResult } from '../generate/generate';
import type { ServedModels } from './models';
import { ApiError, finishReason, modelObject, parseChat, parseCompletion, ParsedRequest, ResponseShapes } from './openai';

export interface ServerOptions {
  /** 0 picks a free port. */
  port: number;
  token: string;
  /** Rows decoded together. */
  maxBatch?: number;
  /** Requests waiting beyond the batch before 429. */
  maxQueue?: number;
  log?: (message: string) => void;
}

export const DEFAULT_MAX_BATCH = 32;
export const DEFAULT_MAX_QUEUE = 256;
/** Request bodies larger than this are refused (413). */
const MAX_BODY_BYTES = 4 << 20;

export interface RunningServer {
  /** e.g. http://127.0.0.1:8321/v1 */
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function startServer(engine: Engine, models: ServedModels, opts: ServerOptions): Promise<RunningServer> {
  if (!opts.token) throw new Error('the server needs a non-empty token');
  const batcher = new Batcher(engine, { maxBatch: opts.maxBatch ?? DEFAULT_MAX_BATCH, maxQueue: opts.maxQueue ?? DEFAULT_MAX_QUEUE });
  const expected = digest(opts.token);
  const log = opts.log ?? (() => {});

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const error = err instanceof ApiError ? err : new ApiError(500, (err as Error)?.message ?? String(err), 'internal_error');
      if (error.status >= 500) log(`${req.method} ${req.url}: ${error.message}`);
      if (!res.headersSent) sendJson(res, error.status, error.toJSON());
      else if (!res.writableEnded) {
        // Mid-stream: an error event, then the end of the stream.
        res.end(`data: ${JSON.stringify(error.toJSON())}\n\n`);
      }
    });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const route = `${req.method} ${url.pathname.replace(/\/+$/, '')}`;
    if (!authorized(req.headers.authorization, expected)) {
      throw new ApiError(401, 'missing or wrong bearer token (Authorization: Bearer TOKEN)', 'invalid_api_key');
    }
    if (route === 'GET /v1/models') return sendJson(res, 200, { object: 'list', data: models.list().map(modelObject) });
    if (route.startsWith('GET /v1/models/')) {
      let id: string;
      try {
        id = decodeURIComponent(url.pathname.slice('/v1/models/'.length));
      } catch {
        throw new ApiError(400, `the model id in ${url.pathname} is not valid URL encoding`, 'invalid_value', 'model');
      }
      return sendJson(res, 200, modelObject(findModel(id)));
    }
    if (route === 'POST /v1/chat/completions') {
      const chat = parseChat(await readJson(req));
      const served = findModel(chat.model);
      const prompt = promptOrError(() => chatPromptIds(engine.model, chat.messages));
      return complete(res, 'chat', chat, served.adapter, prompt);
    }
    if (route === 'POST /v1/completions') {
      const body = parseCompletion(await readJson(req));
      const served = findModel(body.model);
      const prompt = promptOrError(() => engine.model.tokenizer.encode(body.prompt));
      return complete(res, 'completion', body, served.adapter, prompt);
    }
    throw new ApiError(404, `no such endpoint: ${req.method} ${url.pathname}`, 'unknown_url');
  }

  function findModel(id: string) {
    const served = models.find(id);
    if (!served) throw new ApiError(404, `the model "${id}" does not exist (see GET /v1/models)`, 'model_not_found', 'model');
    return served;
  }

  async function complete(
    res: http.ServerResponse,
    kind: 'chat' | 'completion',
    req: ParsedRequest,
    adapter: Parameters<Batcher['submit']>[1],
    prompt: number[],
  ): Promise<void> {
    const shapes = new ResponseShapes(kind, req.model);
    const controller = new AbortController();
    // The client went away: its row leaves the batch at the next step.
    res.on('close', () => controller.abort());
    let first = true;
    const onText = req.stream
      ? (delta: string) => {
          startEvents(res);
          sendEvent(res, shapes.chunk(delta, { first }));
          first = false;
        }
      : undefined;
    let result: GenerateResult;
    try {
      result = await batcher.submit(prompt, adapter, { ...req.options, stopAtBos: true, onText, signal: controller.signal });
    } catch (err) {
      if (err instanceof QueueFullError) throw new ApiError(429, `${err.message}; retry later`, 'rate_limit_exceeded');
      if (err instanceof RangeError)
        throw new ApiError(400, err.message, err.message.includes('context') ? 'context_length_exceeded' : 'invalid_value');
      throw err;
    }
    if (result.finishReason === 'cancelled') return void res.destroy();
    if (!req.stream) return sendJson(res, 200, shapes.whole(result, prompt.length));
    startEvents(res);
    if (first) sendEvent(res, shapes.chunk('', { first }));
    sendEvent(res, shapes.chunk('', { finish: finishReason(result) }));
    if (req.includeUsage) sendEvent(res, shapes.usageChunk(result, prompt.length));
    res.end('data: [DONE]\n\n');
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Compares digests in constant time, so the token cannot be guessed byte by byte from timings. */
function authorized(header: string | undefined, expected: Buffer): boolean {
  const m = /^Bearer (.+)$/i.exec(header ?? '');
  return !!m && timingSafeEqual(digest(m[1].trim()), expected);
}

function promptOrError(build: () => number[]): number[] {
  try {
    return build();
  } catch (err) {
    throw new ApiError(400, `messages: ${(err as Error).message}`, 'invalid_value', 'messages');
  }
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new ApiError(413, `the request body is larger than ${MAX_BODY_BYTES} bytes`, 'body_too_large');
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw new ApiError(400, `the request body is not valid JSON (${(err as Error).message})`, 'invalid_json');
  }
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function startEvents(res: http.ServerResponse): void {
  if (res.headersSent) return;
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  res.flushHeaders();
}

function sendEvent(res: http.ServerResponse, body: unknown): void {
  res.write(`data: ${JSON.stringify(body)}\n\n`);
}

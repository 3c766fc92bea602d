// Fuzz: every JSON-RPC request of the worker with generated params, sent to the real worker
// process over stdio (the public surface), first with no model loaded, then with stories260K
// loaded so that chat/generate params reach the compute thread. Every request must get a result
// or an error with one of the protocol's codes (never the JSON-RPC InternalError of a handler
// that threw, never ErrorCodes.Internal) and a short one-line message; the worker must stay up,
// answer status, and write nothing.

import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { after, before, test } from 'node:test';
import * as fc from 'fast-check';
import {
  createMessageConnection,
  ResponseError,
  StreamMessageReader,
  StreamMessageWriter,
  type MessageConnection,
} from 'vscode-jsonrpc/node';
import { ErrorCodes } from '../../src/protocol';
import { STORIES, tempDir } from '../model/paths';
import { SERVER } from '../worker/client';
import { fuzz } from './fuzz';

const METHODS = [
  'aligner/status',
  'aligner/loadModel',
  'aligner/train',
  'aligner/chat',
  'aligner/generate',
  'aligner/cancel',
  'aligner/adapters/list',
  'aligner/adapters/inspect',
  'aligner/adapters/import',
  'aligner/adapters/delete',
];
/** Codes a well-behaved handler answers with; MethodNotFound/InvalidParams come from the JSON-RPC layer. */
const ALLOWED = new Set<number>([...Object.values(ErrorCodes), -32601, -32602].filter((c) => c !== ErrorCodes.Internal));

const cwd = tempDir();
let conn: MessageConnection;
let stop: () => Promise<void>;
let exited = false;

before(async () => {
  // The worker runs in an empty folder, so that relative paths in params land there.
  const child = spawn(process.execPath, [SERVER, '--stdio'], { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  child.stderr.resume();
  child.once('exit', () => (exited = true));
  conn = createMessageConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
  conn.listen();
  await conn.sendRequest('initialize', { processId: process.pid, rootUri: null, capabilities: {} });
  stop = async () => {
    child.kill('SIGKILL');
    conn.dispose();
  };
});
after(() => stop());

/** Strings that are paths, names, huge or odd. */
const str = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 1, arbitrary: fc.constantFrom('', '.', '..', '/', '/dev/zero', '~', 'a/../../b', '\u0000', 'x'.repeat(100_000), STORIES, cwd) },
);
const num = fc.oneof(fc.integer({ min: -2, max: 6 }), fc.constantFrom(0, 0.5, 1, 1.5, -1, 1e9, 2 ** 53, Number.NaN, 1e308));
const value: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: str },
  { weight: 2, arbitrary: num },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  { weight: 1, arbitrary: fc.constant(null) },
);
const message = fc.record(
  { role: fc.oneof(fc.constantFrom('system', 'user', 'assistant'), value), content: fc.oneof(fc.string({ maxLength: 20 }), value) },
  { requiredKeys: [] },
);
/** Generation params: small budgets mostly, wild values sometimes. */
const genParams = fc.record(
  {
    // Valid budgets stay small (a long answer is not a params question); invalid ones are wild.
    maxNewTokens: fc.oneof(
      { weight: 5, arbitrary: fc.integer({ min: 1, max: 3 }) },
      { weight: 1, arbitrary: value.filter((v) => !(typeof v === 'number' && v > 3)) },
    ),
    temperature: fc.oneof(fc.constantFrom(0, 0.7, 1), value),
    topK: fc.oneof(fc.constantFrom(0, 5), value),
    topP: fc.oneof(fc.constantFrom(0.9, 1), value),
    repetitionPenalty: fc.oneof(fc.constantFrom(1, 1.1), value),
    seed: fc.oneof(fc.nat(), value),
    stop: fc.oneof(fc.array(fc.string({ maxLength: 4 }), { maxLength: 3 }), value),
  },
  { requiredKeys: [] },
);
const params = fc.record(
  {
    path: value,
    device: fc.oneof(fc.constantFrom('auto', 'cpu', 'webgpu', 'cuda'), value),
    workDoneToken: value,
    name: value,
    outDir: value,
    source: fc.oneof(
      fc.record(
        {
          kind: fc.constantFrom('jsonl', 'files', 'folder', 'text', 'commits'),
          path: value,
          paths: fc.array(str, { maxLength: 2 }),
          text: value,
        },
        { requiredKeys: [] },
      ),
      value,
    ),
    options: fc.oneof(
      fc.dictionary(fc.constantFrom('tokens', 'startLayer', 'epochs', 'learningRate', 'maxSteps', 'maxLen', 'method'), value),
      value,
    ),
    overwrite: value,
    jobId: value,
    requestId: value,
    messages: fc.oneof({ weight: 3, arbitrary: fc.array(message, { maxLength: 3 }) }, { weight: 1, arbitrary: value }),
    prompt: fc.oneof(fc.string({ maxLength: 20 }), value),
    adapter: value,
    params: fc.oneof({ weight: 4, arbitrary: genParams }, { weight: 1, arbitrary: value }),
    id: value,
    dirs: fc.oneof(fc.array(str, { maxLength: 3 }), value),
    toDir: value,
  },
  { requiredKeys: [] },
);
const request = fc.record({
  method: fc.oneof({ weight: 9, arbitrary: fc.constantFrom(...METHODS) }, { weight: 1, arbitrary: fc.string({ maxLength: 10 }) }),
  params: fc.oneof({ weight: 6, arbitrary: params }, { weight: 1, arbitrary: value }),
});

/** Sends one request; true when it was answered with a result. */
async function send(r: { method: string; params: unknown }): Promise<boolean> {
  try {
    // The worker must answer long before this; a lost request fails the case.
    const answered = conn.sendRequest(r.method, r.params);
    await Promise.race([
      answered,
      new Promise((_, reject) => setTimeout(() => reject(new Error(`${r.method}: no answer within 4 s`)), 4000)),
    ]);
    return true;
  } catch (err) {
    if (!(err instanceof ResponseError)) throw err;
    assert.ok(ALLOWED.has(err.code), `${r.method} answered code ${err.code}: ${err.message.slice(0, 300)}`);
    assert.ok(
      err.message.length <= 600 && !err.message.includes('\n'),
      `${r.method}: error message of ${err.message.length} characters: ${err.message.slice(0, 200)}`,
    );
    return false;
  } finally {
    assert.equal(exited, false, 'the worker exited');
  }
}

async function statusAnswers(): Promise<void> {
  const started = Date.now();
  const status = (await conn.sendRequest('aligner/status')) as { pid: number };
  assert.ok(status.pid > 0 && Date.now() - started < 2000);
}

test('fuzz: JSON-RPC request params, no model loaded', async (t) => {
  await fuzz(t, 'JSON-RPC params (no model)', request, async (r) => void (await send(r)), { watch: [cwd] });
  await statusAnswers();
});

test('fuzz: JSON-RPC chat/generate/adapter params with stories260K loaded', async (t) => {
  await conn.sendRequest('aligner/loadModel', { path: STORIES, device: 'cpu' });
  // Mostly valid requests, so that params reach the compute thread; one field at a time goes wild.
  const mostly = <T>(valid: fc.Arbitrary<T>) => fc.oneof({ weight: 8, arbitrary: valid }, { weight: 1, arbitrary: value });
  const generation = fc.record(
    {
      maxNewTokens: mostly(fc.integer({ min: 1, max: 3 })).filter((v) => !(typeof v === 'number' && v > 3)),
      temperature: mostly(fc.double({ min: 0, max: 2, noNaN: true })),
      topK: mostly(fc.nat(50)),
      topP: mostly(fc.double({ min: 0.01, max: 1, noNaN: true })),
      repetitionPenalty: mostly(fc.double({ min: 0.5, max: 2, noNaN: true })),
      seed: mostly(fc.integer()),
      stop: mostly(fc.array(fc.string({ minLength: 1, maxLength: 3 }), { maxLength: 2 })),
    },
    { requiredKeys: ['maxNewTokens'] },
  );
  const chatLike = fc.record(
    {
      requestId: mostly(fc.string({ minLength: 1, maxLength: 8 })),
      messages: mostly(
        fc.array(fc.record({ role: fc.constantFrom('system', 'user', 'assistant'), content: fc.string({ maxLength: 20 }) }), {
          minLength: 1,
          maxLength: 3,
        }),
      ),
      prompt: mostly(fc.string({ minLength: 1, maxLength: 20 })),
      adapter: mostly(fc.constant(null)),
      params: mostly(generation),
      path: value,
      id: value,
      dirs: fc.oneof(fc.array(str, { maxLength: 3 }), value),
    },
    { requiredKeys: ['messages', 'prompt', 'params'] },
  );
  let answered = 0;
  const withModel = fc.record({
    method: fc.constantFrom('aligner/chat', 'aligner/generate', 'aligner/adapters/list', 'aligner/adapters/inspect', 'aligner/cancel'),
    params: chatLike,
  });
  await fuzz(t, 'JSON-RPC params (model loaded)', withModel, async (r) => void ((await send(r)) && answered++), { watch: [cwd] });
  t.diagnostic(`fuzz JSON-RPC params (model loaded): ${answered} requests answered with a result`);
  assert.ok(answered > 100, `only ${answered} requests were valid`);
  await statusAnswers();
  assert.deepEqual(fs.readdirSync(cwd), []);
});

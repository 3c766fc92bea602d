// `aligner serve` on loopback, driven by the official `openai` client as any
// OpenAI-compatible tool would: model list, chat and completions with and without
// streaming, stop strings, seeds, errors in OpenAI's shape, the queue limit, and
// 64 concurrent requests over 3 adapters that answer exactly as one by one.

import * as assert from 'node:assert/strict';
import { ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { writeAdapter } from '../../src/adapter/file';
import { newAdapter } from '../../src/adapter/new';
import { Engine } from '../../src/engine/engine';
import type { AdapterWeights } from '../../src/adapter/types';
import { generate } from '../../src/generate/generate';
import { loadModel } from '../../src/model/load';
import type { BaseModel } from '../../src/model/types';
import { CLI } from '../cli/cli';
import { STORIES, tempDir } from '../model/paths';
import { untrainedSummary } from '../adapter/raw';

const TOKEN = 'test-token-1234';
const STYLES = ['calm', 'loud', 'odd'];

let model: BaseModel;
let engine: Engine;
const adapters = new Map<string, AdapterWeights | null>();
const servers: ChildProcessWithoutNullStreams[] = [];
let client: OpenAI;

/** Starts the CLI server on a free port; resolves with its base URL once it listens. */
async function serve(...args: string[]): Promise<string> {
  const child = spawn(process.execPath, [CLI, 'serve', '--model', STORIES, '--port', '0', ...args]);
  servers.push(child);
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      const m = /at (http:\/\/127\.0\.0\.1:\d+\/v1)\n/.exec(out);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${err}`)));
  });
}

before(async () => {
  model = await loadModel(STORIES);
  engine = await Engine.create(model);
  const dir = tempDir();
  adapters.set('stories260K', null);
  STYLES.forEach((name, i) => {
    const a = newAdapter(model.config, i + 1, 2, 10 + i);
    a.gates.fill([0.9, -1.4, 1.6][i]);
    const meta = untrainedSummary(model);
    writeAdapter(path.join(dir, `${name}.safetensors`), a, meta, model.config);
    adapters.set(`stories260K+${name}`, a);
  });
  const url = await serve('--adapters', dir, '--token', TOKEN);
  client = new OpenAI({ baseURL: url, apiKey: TOKEN, maxRetries: 0 });
});

after(async () => {
  for (const s of servers) s.kill('SIGTERM');
  await engine.dispose();
});

/** What the engine gives for the same prompt and adapter, in this process. */
async function reference(prompt: string, id: string, opts: { maxNewTokens: number; stop?: string[] }) {
  return generate(engine, model.tokenizer.encode(prompt), adapters.get(id)!, { ...opts, temperature: 0, stopAtBos: true });
}

test('the model list has the base model and each adapter', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids, ['stories260K', 'stories260K+calm', 'stories260K+loud', 'stories260K+odd']);
  assert.equal((await client.models.retrieve('stories260K+loud')).id, 'stories260K+loud');
});

test('completions, whole and streamed, equal the engine greedy answer', async () => {
  const expected = await reference('Once upon a time', 'stories260K+loud', { maxNewTokens: 30 });
  const whole = await client.completions.create({ model: 'stories260K+loud', prompt: 'Once upon a time', max_tokens: 30, temperature: 0 });
  assert.equal(whole.choices[0].text, expected.text);
  assert.equal(whole.choices[0].finish_reason, 'length');
  assert.equal(whole.usage?.completion_tokens, 30);
  const stream = await client.completions.create({
    model: 'stories260K+loud',
    prompt: 'Once upon a time',
    max_tokens: 30,
    temperature: 0,
    stream: true,
  });
  let text = '';
  let chunks = 0;
  let finish: string | null = null;
  for await (const c of stream) {
    text += c.choices[0]?.text ?? '';
    finish = c.choices[0]?.finish_reason ?? finish;
    chunks++;
  }
  assert.equal(text, expected.text);
  assert.equal(finish, 'length');
  assert.ok(chunks > 10, `${chunks} chunks`);
});

test('chat, whole and streamed with usage, equals the engine greedy answer', async () => {
  const messages = [{ role: 'user' as const, content: 'Lily and Tom went to the park.' }];
  const expected = await reference('Lily and Tom went to the park.', 'stories260K+odd', { maxNewTokens: 25 });
  const whole = await client.chat.completions.create({ model: 'stories260K+odd', messages, max_tokens: 25, temperature: 0 });
  assert.equal(whole.choices[0].message.content, expected.text);
  assert.equal(whole.choices[0].message.role, 'assistant');
  const stream = await client.chat.completions.create({
    model: 'stories260K+odd',
    messages,
    max_completion_tokens: 25,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let usage;
  for await (const c of stream) {
    text += c.choices[0]?.delta.content ?? '';
    usage = c.usage ?? usage;
  }
  assert.equal(text, expected.text);
  assert.equal(usage?.completion_tokens, expected.ids.length);
  assert.equal(usage?.prompt_tokens, model.tokenizer.encode('Lily and Tom went to the park.').length);
});

test('stop strings cut the answer, streamed or not', async () => {
  const full = await reference('Once upon a time', 'stories260K', { maxNewTokens: 60 });
  const cut = full.text.indexOf('.');
  assert.ok(cut > 0, full.text);
  const whole = await client.completions.create({
    model: 'stories260K',
    prompt: 'Once upon a time',
    max_tokens: 60,
    temperature: 0,
    stop: '.',
  });
  assert.equal(whole.choices[0].text, full.text.slice(0, cut));
  assert.equal(whole.choices[0].finish_reason, 'stop');
  const stream = await client.chat.completions.create({
    model: 'stories260K',
    messages: [{ role: 'user', content: 'Once upon a time' }],
    max_tokens: 60,
    temperature: 0,
    stop: ['no such text', '.'],
    stream: true,
  });
  let text = '';
  for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
  assert.equal(text, full.text.slice(0, cut));
});

test('a seed reproduces a sampled answer', async () => {
  const ask = (seed: number) =>
    client.completions
      .create({ model: 'stories260K+calm', prompt: 'One day', max_tokens: 30, temperature: 1, top_p: 0.9, seed })
      .then((r) => r.choices[0].text);
  const [a, b, c] = await Promise.all([ask(5), ask(5), ask(6)]);
  assert.equal(a, b);
  assert.notEqual(a, c);
});

test('errors: wrong token 401, unknown model 404, malformed body 400, in OpenAI error JSON', async () => {
  const wrong = new OpenAI({ baseURL: client.baseURL, apiKey: 'wrong', maxRetries: 0 });
  await assert.rejects(wrong.models.list(), (e: unknown) => e instanceof OpenAI.AuthenticationError && e.status === 401);
  await assert.rejects(
    client.chat.completions.create({ model: 'stories260K+missing', messages: [{ role: 'user', content: 'hi' }] }),
    (e: unknown) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found',
  );
  await assert.rejects(
    client.completions.create({ model: 'stories260K', prompt: 'x', temperature: 5 }),
    (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === 'temperature' && /temperature/.test(e.message),
  );
  for (const body of ['{"model": "stories260K", "prompt":', '[1, 2]', '{"model": "stories260K", "messages": []}']) {
    const res = await fetch(`${client.baseURL}/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body });
    assert.equal(res.status, 400, body);
    const json = (await res.json()) as { error: { message: string; type: string } };
    assert.equal(json.error.type, 'invalid_request_error');
    assert.ok(json.error.message.length > 0);
  }
  // A model name is a file name in the adapter folders, never a path.
  await assert.rejects(client.models.retrieve('stories260K+../adapters/calm'), OpenAI.NotFoundError);
  const badEncoding = await fetch(`${client.baseURL}/models/%E0%A4%A`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(badEncoding.status, 400);
  const none = await fetch(`${client.baseURL}/embeddings`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: '{}' });
  assert.equal(none.status, 404);
});

test('64 concurrent requests over 3 adapters answer as one by one', async () => {
  const prompts = ['Once upon a time', 'One day', 'The dog', 'Tim and Sue'];
  const ids = [...adapters.keys()].slice(1);
  const requests = Array.from({ length: 64 }, (_, i) => ({
    model: ids[i % 3],
    prompt: prompts[i % 4],
    max_tokens: 12 + (i % 5) * 6,
    temperature: 0,
  }));
  const ask = (r: (typeof requests)[number]) => client.completions.create(r).then((c) => c.choices[0].text);
  const together = await Promise.all(requests.map(ask));
  const alone: string[] = [];
  for (const r of requests) alone.push(await ask(r));
  assert.deepEqual(together, alone);
  // The adapters really differ, so rows did not borrow each other's adapter.
  assert.notEqual(together[0], together[20]);
});

test('a full queue answers 429', async () => {
  const url = await serve('--token', TOKEN, '--max-batch', '1', '--max-queue', '1');
  const small = new OpenAI({ baseURL: url, apiKey: TOKEN, maxRetries: 0 });
  const results = await Promise.allSettled(
    Array.from({ length: 6 }, () => small.completions.create({ model: 'stories260K', prompt: 'Once upon a time', max_tokens: 40 })),
  );
  const refused = results.filter((r) => r.status === 'rejected');
  assert.ok(refused.length >= 3, `${refused.length} refused`);
  for (const r of refused) assert.ok((r as PromiseRejectedResult).reason instanceof OpenAI.RateLimitError);
  assert.ok(results.some((r) => r.status === 'fulfilled'));
});

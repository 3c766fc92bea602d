// Continuous batching on the real stories260K model: requests with different
// adapters, prompts, settings and arrival times, decoded together, give exactly
// what each gives alone; cancelled and over-the-limit requests end cleanly.

import * as assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { newAdapter } from '../../src/adapter/new';
import { Engine } from '../../src/engine/engine';
import type { AdapterWeights } from '../../src/adapter/types';
import { Batcher, QueueFullError } from '../../src/generate/batcher';
import { generate, GenerateOptions } from '../../src/generate/generate';
import { loadModel } from '../../src/model/load';
import { STORIES } from '../model/paths';

let engine: Engine;
const adapters: (AdapterWeights | null)[] = [null];

before(async () => {
  engine = await Engine.create(await loadModel(STORIES));
  for (const [tokens, seed, gate] of [
    [1, 1, 0.9],
    [3, 2, -1.2],
    [2, 3, 1.5],
  ]) {
    const a = newAdapter(engine.model.config, tokens, 2, seed);
    a.gates.fill(gate);
    adapters.push(a);
  }
});
after(() => engine.dispose());

const PROMPTS = ['Once upon a time', 'Lily and Tom went to the park. They saw', 'One day', 'The cat sat', 'Tim had a big red ball. He'];

function request(i: number): { prompt: number[]; adapter: AdapterWeights | null; opts: GenerateOptions } {
  const opts: GenerateOptions = {
    maxNewTokens: 8 + ((i * 7) % 30),
    temperature: i % 3 === 0 ? 0.9 : 0,
    topP: 0.9,
    seed: i,
    stopAtBos: true,
  };
  if (i % 5 === 4) opts.stop = ['.'];
  return { prompt: engine.model.tokenizer.encode(PROMPTS[i % PROMPTS.length]), adapter: adapters[i % adapters.length], opts };
}

test('requests joining and leaving a batch get what each gets alone', async () => {
  const batcher = new Batcher(engine, { maxBatch: 6, maxQueue: 100 });
  const streamed: string[] = Array(20).fill('');
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < 20; i++) {
    const { prompt, adapter, opts } = request(i);
    pending.push(batcher.submit(prompt, adapter, { ...opts, onText: (d) => (streamed[i] += d) }));
    // Stagger arrivals so that rows join a batch in the middle of its decoding.
    if (i % 4 === 3) await new Promise((r) => setTimeout(r, 5));
  }
  const batched = (await Promise.all(pending)) as Awaited<ReturnType<typeof generate>>[];
  for (let i = 0; i < 20; i++) {
    const { prompt, adapter, opts } = request(i);
    const alone = await generate(engine, prompt, adapter, opts);
    assert.deepEqual(batched[i], alone, `request ${i}`);
    assert.equal(streamed[i], alone.text, `request ${i} streamed`);
  }
  assert.deepEqual(batcher.load, { active: 0, waiting: 0 });
});

test('a cancelled request leaves the batch; the others are unaffected', async () => {
  const batcher = new Batcher(engine, { maxBatch: 4, maxQueue: 10 });
  const controller = new AbortController();
  let deltas = 0;
  const { prompt } = request(0);
  const long = { maxNewTokens: 60, temperature: 0 };
  const [cancelled, other] = await Promise.all([
    batcher.submit(prompt, adapters[1], { ...long, signal: controller.signal, onText: () => ++deltas === 3 && controller.abort() }),
    batcher.submit(prompt, adapters[2], long),
  ]);
  assert.equal(cancelled.finishReason, 'cancelled');
  assert.ok(cancelled.ids.length < 6, `${cancelled.ids.length} tokens`);
  assert.deepEqual(other, await generate(engine, prompt, adapters[2], long));
});

test("defect 4: an adapter that makes its row's logits non-finite fails that request alone, not the batch", async () => {
  const huge = newAdapter(engine.model.config, 2, 2, 1);
  huge.prefix.fill(3e38);
  huge.gates.fill(1);
  const { prompt } = request(0);
  const opts = { maxNewTokens: 30, temperature: 0 };
  const alone = await generate(engine, prompt, adapters[1], opts);
  const named = (err: Error): boolean =>
    err.name === 'AdapterError' && /^adapter "huge\.safetensors": the logits are not finite .* after 0 generated tokens/.test(err.message);
  const batcher = new Batcher(engine, { maxBatch: 4, maxQueue: 10 });
  // Prefilled together, the bad row first and then last.
  for (const badFirst of [true, false]) {
    const submitBad = (): Promise<unknown> => batcher.submit(prompt, huge, { ...opts, adapterName: 'huge.safetensors' });
    const bad = badFirst ? submitBad() : null;
    const good = batcher.submit(prompt, adapters[1], opts);
    const [b, g] = await Promise.allSettled([bad ?? submitBad(), good]);
    assert.equal(b.status, 'rejected');
    assert.ok(named((b as PromiseRejectedResult).reason), String((b as PromiseRejectedResult).reason));
    assert.deepEqual(g, { status: 'fulfilled', value: alone });
  }
  // Joining a batch that is decoding: the running request goes on.
  let joined: Promise<PromiseSettledResult<unknown>[]> | null = null;
  const running = batcher.submit(prompt, adapters[1], {
    ...opts,
    onText: () => void (joined ??= Promise.allSettled([batcher.submit(prompt, huge, { ...opts, adapterName: 'huge.safetensors' })])),
  });
  assert.deepEqual(await running, alone);
  const [j] = await joined!;
  assert.equal(j.status, 'rejected');
  assert.ok(named((j as PromiseRejectedResult).reason), String((j as PromiseRejectedResult).reason));
  assert.deepEqual(batcher.load, { active: 0, waiting: 0 });
});

test('a full queue refuses at once; a bad prompt is refused alone', async () => {
  const batcher = new Batcher(engine, { maxBatch: 1, maxQueue: 2 });
  const { prompt } = request(0);
  const accepted = [0, 1, 2].map(() => batcher.submit(prompt, null, { maxNewTokens: 4 }));
  await assert.rejects(batcher.submit(prompt, null, { maxNewTokens: 4 }), QueueFullError);
  await assert.rejects(batcher.submit([], null), /the prompt is empty/);
  await assert.rejects(batcher.submit(prompt, null, { temperature: -1 }), /temperature must be >= 0/);
  for (const r of await Promise.all(accepted)) assert.equal(r.ids.length, 4);
});

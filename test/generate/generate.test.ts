// Generation on the real stories260K model: seeds, stop strings, EOS,
// cancellation, adapters in the KV-cache path.

import * as assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { newAdapter } from '../../src/adapter/new';
import { Engine } from '../../src/engine/engine';
import { generate } from '../../src/generate/generate';
import { loadModel } from '../../src/model/load';
import { STORIES } from '../model/paths';

let engine: Engine;
let prompt: number[];

before(async () => {
  const model = await loadModel(STORIES);
  engine = await Engine.create(model);
  prompt = model.tokenizer.encode('Once upon a time');
});
after(() => engine.dispose());

test('a seed reproduces a sampled generation; another seed differs', async () => {
  const opts = { maxNewTokens: 40, temperature: 1, topP: 0.95, topK: 50, repetitionPenalty: 1.1 };
  const a = await generate(engine, prompt, null, { ...opts, seed: 11 });
  const b = await generate(engine, prompt, null, { ...opts, seed: 11 });
  const c = await generate(engine, prompt, null, { ...opts, seed: 12 });
  assert.deepEqual(a.ids, b.ids);
  assert.notDeepEqual(a.ids, c.ids);
});

test('stop strings end the text before the match, also across tokens', async () => {
  const full = await generate(engine, prompt, null, { maxNewTokens: 60, temperature: 0 });
  const at = full.text.indexOf('Lily');
  assert.ok(at > 0, full.text);
  const cut = await generate(engine, prompt, null, { maxNewTokens: 60, temperature: 0, stop: ['Lily', 'no such text'] });
  assert.equal(cut.finishReason, 'stop');
  assert.equal(cut.text, full.text.slice(0, at));
});

test('the story ends at BOS when asked (the model ends stories with it)', async () => {
  const out = await generate(engine, prompt, null, { maxNewTokens: 400, temperature: 0, stopAtBos: true });
  assert.equal(out.finishReason, 'eos');
  // stories260K's README: for this prompt, greedy decoding emits <s> as new token 342.
  assert.equal(out.ids.length, 341);
});

test('cancellation stops streaming and reports it', async () => {
  const controller = new AbortController();
  let deltas = 0;
  const out = await generate(engine, prompt, null, {
    maxNewTokens: 200,
    temperature: 0,
    signal: controller.signal,
    onText: () => {
      if (++deltas === 5) controller.abort();
    },
  });
  assert.equal(out.finishReason, 'cancelled');
  assert.ok(out.ids.length >= 5 && out.ids.length < 10, `${out.ids.length} tokens`);
});

test('an adapter changes generation; a zero-gate adapter does not', async () => {
  const cfg = engine.model.config;
  const zero = newAdapter(cfg, 4, 2, 1);
  const strong = newAdapter(cfg, 4, 2, 1);
  strong.gates.fill(2);
  const base = await generate(engine, prompt, null, { maxNewTokens: 30, temperature: 0 });
  assert.deepEqual((await generate(engine, prompt, zero, { maxNewTokens: 30, temperature: 0 })).ids, base.ids);
  assert.notDeepEqual((await generate(engine, prompt, strong, { maxNewTokens: 30, temperature: 0 })).ids, base.ids);
});

test('prompts at or past the context are refused clearly', async () => {
  await assert.rejects(generate(engine, Array(512).fill(5), null), /512 tokens; the model's context is 512/);
});

test('defect 4: an adapter that makes the logits non-finite stops generation with an error naming it', async () => {
  const huge = newAdapter(engine.model.config, 2, 2, 1);
  huge.prefix.fill(3e38);
  huge.gates.fill(1);
  await assert.rejects(
    generate(engine, prompt, huge, { maxNewTokens: 8, temperature: 0, adapterName: 'huge.safetensors' }),
    (err: Error) => {
      assert.equal(err.name, 'AdapterError');
      assert.match(err.message, /^adapter "huge\.safetensors": the logits are not finite \(NaN for token \d+\) after 0 generated tokens/);
      return true;
    },
  );
});

// Batched seeded answers (src/generate/answers.ts): rows with prompts of different lengths
// leave the batch when they end, and an answer does not depend on the batch it ran in.

import * as assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { newAdapter } from '../../src/adapter/new';
import { Engine } from '../../src/engine/engine';
import { referenceAnswers, sampleAnswers } from '../../src/generate/answers';
import { loadModel } from '../../src/model/load';
import { STORIES } from '../model/paths';

let engine: Engine;
before(async () => {
  engine = await Engine.create(await loadModel(STORIES));
});
after(() => engine.dispose());

const PROMPTS = ['Once upon a time', 'Tom and Lily went to the park to play with', 'One day,'];

test('answers decoded together equal answers decoded one at a time, each within maxNewTokens', async () => {
  const adapter = newAdapter(engine.model.config, 4, 2, 0);
  adapter.gates.fill(0.3);
  const ids = PROMPTS.map((p) => engine.model.tokenizer.encode(p));
  const opts = { temperature: 1, topP: 1, seed: 7, maxNewTokens: 40 };
  const together = await sampleAnswers(engine, ids, adapter, opts);
  const alone = [];
  for (const [i, p] of ids.entries()) alone.push(...(await sampleAnswers(engine, [p], adapter, { ...opts, seed: opts.seed + i })));
  assert.deepEqual(together, alone);
  for (const a of together) assert.ok(a.length > 0 && a.length <= 40, `${a.length} tokens`);
  // BOS ends a story (stories260K); it is not part of the answer.
  for (const a of together) assert.ok(!a.includes(1));
});

test('a row whose prompt leaves no room in the context gets an empty answer; the others go on', async () => {
  const context = engine.model.config.maxPositions;
  const full = Array(context).fill(engine.model.tokenizer.encode(' a').at(-1)!);
  const [empty, other] = await sampleAnswers(engine, [full, engine.model.tokenizer.encode('One day,')], null, {
    temperature: 1,
    topP: 1,
    seed: 0,
    maxNewTokens: 5,
  });
  assert.deepEqual(empty, []);
  assert.ok(other.length > 0 && other.length <= 5);
});

test('referenceAnswers: perPair answers per pair, the answer text after its prompt, at most as long as the longest rejected one', async () => {
  const pairs = [
    { prompt: 'Once upon a time', chosen: ', there was a dog!', rejected: ', there was a dog.' },
    { prompt: 'One day,', chosen: ' Tom ran!', rejected: ' Tom ran.' },
  ];
  const anchor = await referenceAnswers(engine, pairs, null, { perPair: 3, seed: 0 });
  assert.deepEqual(
    anchor.map((a) => a.prompt),
    ['Once upon a time', 'Once upon a time', 'Once upon a time', 'One day,', 'One day,', 'One day,'],
  );
  const longest = Math.max(...pairs.map((p) => engine.model.tokenizer.encode(p.rejected).length));
  for (const a of anchor) {
    assert.ok(
      engine.model.tokenizer.encode(a.prompt + a.completion).length <= engine.model.tokenizer.encode(a.prompt).length + longest + 1,
    );
    assert.ok(a.completion.length > 0);
  }
});

// The training loop on the real model: the NaN/Inf guard, cancellation, and
// per-epoch validation.

import * as assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { newAdapter } from '../../src/adapter/new';
import type { RecordSet } from '../../src/data/records';
import { Engine } from '../../src/engine/engine';
import { loadModel } from '../../src/model/load';
import { endTokenId } from '../../src/train/endtoken';
import { train, TrainProgress } from '../../src/train/trainer';
import { STORIES } from '../model/paths';

let engine: Engine;
const stories: RecordSet = {
  form: 'text',
  file: 'inline',
  records: Array.from({ length: 24 }, (_, i) => ({
    text: `Once upon a time, there was a cat number ${i}. It liked to play! It was happy!`,
  })),
};

before(async () => {
  engine = await Engine.create(await loadModel(STORIES));
});
after(() => engine.dispose());

test('a non-finite loss stops training cleanly and keeps the last good adapter', async () => {
  const init = newAdapter(engine.model.config, 2, 2, 0);
  init.prefix.fill(3e38); // overflows the prefix keys to ±Inf: every loss is NaN
  init.gates.fill(1);
  const { adapter, summary } = await train(engine, stories, { init, steps: 3, batchSize: 4 });
  assert.match(summary.stoppedEarly ?? '', /non-finite loss or gradient at step 1; kept the adapter from step 0/);
  assert.equal(summary.steps, 0);
  assert.deepEqual(adapter.prefix, init.prefix);
  assert.deepEqual(adapter.gates, init.gates);
});

test('validation loss is reported at the end of every epoch', async () => {
  const reports: TrainProgress[] = [];
  const { summary } = await train(
    engine,
    stories,
    { tokens: 2, epochs: 2, batchSize: 4, valSplit: 0.25 },
    { onProgress: (p) => reports.push(p) },
  );
  const withVal = reports.filter((p) => p.valLoss !== undefined);
  assert.equal(summary.trainExamples, 18);
  assert.equal(summary.valExamples, 6);
  assert.deepEqual(
    withVal.map((p) => p.step),
    [5, 10],
  );
  assert.equal(summary.steps, 10);
  assert.ok(summary.valLoss! < summary.initialValLoss!, `${summary.valLoss} < ${summary.initialValLoss}`);
});

test('cancelling stops before the next step', async () => {
  const controller = new AbortController();
  await assert.rejects(
    train(
      engine,
      stories,
      { tokens: 1, steps: 50, batchSize: 2 },
      { signal: controller.signal, onProgress: (p) => p.step === 2 && controller.abort() },
    ),
    { name: 'AbortError', message: 'training cancelled' },
  );
});

test('end token: stories260K ends its stories with BOS (id 1), not the eos 2 of its generation_config', async () => {
  assert.deepEqual(engine.model.generation.eosTokenIds, [2]);
  const texts = stories.records.map((r) => (r as { text: string }).text);
  assert.equal(await endTokenId(engine, texts), 1);
  // One stop id needs no probe.
  const single = { ...engine, model: { ...engine.model, generation: { bosTokenId: null, eosTokenIds: [2] } } } as unknown as Engine;
  assert.equal(await endTokenId(single, texts), 2);
});

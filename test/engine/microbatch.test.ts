// A training step run in passes of fewer rows (memory-bounded training) gives
// the loss, gradients and log-probabilities of the whole batch at once.

import * as assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { newAdapter } from '../../src/adapter/new';
import { Engine, microBatchRows } from '../../src/engine/engine';
import type { TokenBatch } from '../../src/data/batches';
import { loadModel } from '../../src/model/load';
import type { BaseModel } from '../../src/model/types';
import { STORIES } from '../model/paths';
import { fourStories, qwen05bShape } from './training';

let model: BaseModel;
let whole: Engine;
let single: Engine;
let batch: TokenBatch;

before(async () => {
  model = await loadModel(STORIES);
  whole = await Engine.create(model);
  single = await Engine.create(model, { microBatch: 1 });
  batch = fourStories(model);
});
after(() => Promise.all([whole.dispose(), single.dispose()]));

function close(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-5 * (1 + Math.abs(b[i])), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

test('SFT: one row per pass equals the whole batch', async () => {
  const adapter = newAdapter(model.config, 3, 2, 1);
  adapter.gates.fill(0.3);
  const a = await single.sftStep(batch, adapter);
  const b = await whole.sftStep(batch, adapter);
  close([a.loss], [b.loss], 'loss');
  close(a.gradPrefix, b.gradPrefix, 'grad prefix');
  close(a.gradGates, b.gradGates, 'grad gates');
  close(a.logps, b.logps, 'logps');
  assert.equal(a.targets, b.targets);
});

test('DPO: one pair per pass equals the whole batch', async () => {
  const adapter = newAdapter(model.config, 2, 1, 2);
  adapter.gates.fill(-0.4);
  const ref = Float32Array.of(-30, -41, -25, -38);
  const a = await single.dpoStep(batch, adapter, ref, 0.1);
  const b = await whole.dpoStep(batch, adapter, ref, 0.1);
  close([a.loss], [b.loss], 'loss');
  close(a.gradPrefix, b.gradPrefix, 'grad prefix');
  close(a.gradGates, b.gradGates, 'grad gates');
  close(a.logps, b.logps, 'logps');
});

test('the automatic micro-batch: whole batches for small models, one 256-token row for Qwen2.5-0.5B', () => {
  assert.ok(microBatchRows(model.config, 256, 8 * 2 ** 30) >= 8);
  const qwen05b = qwen05bShape(model.config);
  assert.equal(microBatchRows(qwen05b, 256, 16 * 2 ** 30), 1);
  assert.equal(microBatchRows(qwen05b, 256, 0), 1);
});

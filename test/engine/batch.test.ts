// A batch of rows with different prompt lengths and different adapters decodes
// exactly as each row would alone: padding in the KV cache is masked, and every
// row keeps its own rotary positions and adapter.

import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { newAdapter } from '../../src/adapter/new';
import { Engine } from '../../src/engine/engine';
import type { AdapterWeights } from '../../src/adapter/types';
import { argmax } from '../../src/generate/sampler';
import { loadModel } from '../../src/model/load';
import { STORIES } from '../model/paths';

async function greedy(engine: Engine, prompts: number[][], adapters: (AdapterWeights | null)[], steps: number) {
  let { state, logits } = await engine.prefill(prompts, adapters);
  const ids: number[][] = prompts.map(() => []);
  const firstLogits = logits.map((l) => l.slice());
  for (let i = 0; i < steps; i++) {
    const next = logits.map(argmax);
    next.forEach((t, b) => ids[b].push(t));
    logits = await engine.decode(state, next);
  }
  return { ids, firstLogits };
}

test('mixed prompt lengths and adapters in one batch equal each row alone', async () => {
  const model = await loadModel(STORIES);
  const engine = await Engine.create(model);
  const cfg = model.config;
  const a = newAdapter(cfg, 3, 2, 5);
  a.gates.fill(0.8);
  const b = newAdapter(cfg, 1, 3, 6);
  b.gates.fill(-1.5);
  const prompts = [
    model.tokenizer.encode('Once upon a time'),
    model.tokenizer.encode('Lily and Tom went to the park. They saw'),
    model.tokenizer.encode('One day'),
  ];
  const adapters = [a, null, b];
  const batched = await greedy(engine, prompts, adapters, 24);
  for (let r = 0; r < prompts.length; r++) {
    const alone = await greedy(engine, [prompts[r]], [adapters[r]], 24);
    assert.deepEqual(batched.ids[r], alone.ids[0], `row ${r}`);
    const diff = Math.max(...batched.firstLogits[r].map((x, i) => Math.abs(x - alone.firstLogits[0][i])));
    assert.ok(diff < 1e-4, `row ${r}: first-step logits differ by ${diff}`);
  }
  assert.notDeepEqual(batched.ids[0], (await greedy(engine, [prompts[0]], [null], 24)).ids[0], 'the adapter changes row 0');
  await engine.dispose();
});

// Sessions are built once: new adapters, prompts and batch shapes only change inputs.

import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { Runtime } from '../../src/engine/runtime';
import { newAdapter } from '../../src/adapter/new';
import { Engine } from '../../src/engine/engine';
import type { TokenBatch } from '../../src/data/batches';
import { loadModel } from '../../src/model/load';
import { STORIES } from '../model/paths';

function batchOf(rows: number, length: number): TokenBatch {
  const inputIds = Int32Array.from({ length: rows * length }, (_, i) => 3 + ((i * 37) % 500));
  const mask = Uint8Array.from({ length: rows * length }, (_, i) => (i % length < length - 1 ? 1 : 0));
  return { rows, length, inputIds, targets: inputIds.map((_, i) => inputIds[i + 1] ?? 0), mask };
}

test('no session is rebuilt when the adapter, the prompt or the batch changes', async () => {
  const built: string[] = [];
  const original = Runtime.prototype.session;
  Runtime.prototype.session = function (this: Runtime, model: Uint8Array, name: string) {
    built.push(name);
    return original.call(this, model, name);
  };
  try {
    const engine = await Engine.create(await loadModel(STORIES));
    const cfg = engine.model.config;
    for (const [tokens, start, rows, length] of [
      [1, 2, 1, 9],
      [5, 2, 3, 17],
      [2, 2, 2, 30],
    ]) {
      const adapter = newAdapter(cfg, tokens, start, tokens);
      await engine.sftStep(batchOf(rows, length), adapter);
      await engine.sequenceLogps(batchOf(rows, length), adapter);
      await engine.logits(
        [
          [1, 403],
          [1, 317, 269, 274],
        ],
        [adapter, null],
      );
    }
    await engine.prefill([[1, 403, 407]], [newAdapter(cfg, 7, 1, 0)]);
    assert.deepEqual(built.sort(), ['prefix', 'score', 'step', 'train-sft-2'].sort());
    await engine.dispose();
  } finally {
    Runtime.prototype.session = original;
  }
});

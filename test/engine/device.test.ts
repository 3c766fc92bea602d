// The execution provider is a parameter; one that cannot start falls back to CPU and says why.

import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { Engine } from '../../src/engine/engine';
import { loadModel } from '../../src/model/load';
import { STORIES } from '../model/paths';

test('cuda without its add-on falls back to the CPU with a message', async () => {
  const messages: string[] = [];
  const engine = await Engine.create(await loadModel(STORIES), { device: 'cuda', log: (m) => messages.push(m) });
  assert.equal(engine.device, 'cpu');
  assert.equal(messages.length, 1);
  assert.match(messages[0], /execution provider "cuda" is not available \(.+\); falling back to CPU/);
  const [logits] = await engine.logits([[1, 403, 407]], [null], { lastOnly: true });
  assert.equal(logits.length, 512);
  await engine.dispose();
});

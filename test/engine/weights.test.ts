// The converted-weights cache: written once, reused, and replaced (not accumulated)
// when the model folder changes.

import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { weightsFile, WEIGHTS_FILE } from '../../src/engine/weights';
import { loadModel } from '../../src/model/load';
import { copyOfStories, tempDir } from '../model/paths';

test('weights are converted once per model version, and stale copies are removed', async () => {
  const cache = tempDir();
  const folder = copyOfStories();
  const first = weightsFile(await loadModel(folder), cache);
  const file = path.join(first.dir, WEIGHTS_FILE);
  const written = fs.statSync(file).mtimeMs;
  assert.equal(weightsFile(await loadModel(folder), cache).dir, first.dir, 'reused');
  assert.equal(fs.statSync(file).mtimeMs, written, 'not rewritten');

  // The same folder after its weights changed (a newer download, say).
  const weights = path.join(folder, 'model.safetensors');
  fs.utimesSync(weights, new Date(), new Date(Date.now() + 5000));
  const second = weightsFile(await loadModel(folder), cache);
  assert.notEqual(second.dir, first.dir);
  assert.equal(fs.existsSync(first.dir), false, 'the stale conversion is gone');
  assert.deepEqual(fs.readdirSync(path.join(cache, 'weights')), [path.basename(second.dir)]);
  const { offset } = second.index.get('model.norm.weight');
  assert.equal(offset % 4096, 0, 'page-aligned');
});

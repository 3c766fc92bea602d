// aligner/describeModel, aligner/countTokens and adapters/list for a named model: the real
// worker answers from the model's files, with no model loaded for compute.

import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { writeAdapter } from '../../src/adapter/file';
import { newAdapter } from '../../src/adapter/new';
import { loadModel } from '../../src/model/load';
import { HfTokenizer } from '../../src/model/tokenizer';
import type { BaseModel } from '../../src/model/types';
import { AdapterListRequest, CountTokensRequest, DescribeModelRequest, ErrorCodes, StatusRequest } from '../../src/protocol';
import { fimTokens } from '../../src/worker/describe';
import { FakeTokenizer } from '../data/fake_tokenizer';
import { STORIES, copyOfStories, tempDir } from '../model/paths';
import { rejectsWith, startWorker, type WorkerHandle } from './client';
import { untrainedSummary } from '../adapter/raw';

let worker: WorkerHandle;
let model: BaseModel;

before(async () => {
  worker = await startWorker();
  model = await loadModel(STORIES);
});

after(() => worker.stop());

test('describeModel reads the context, shape and fingerprint from the files, without loading the model', async () => {
  const card = await worker.conn.sendRequest(DescribeModelRequest, { path: STORIES });
  assert.equal(card.contextLength, 512);
  assert.equal(card.fingerprint, model.fingerprint);
  assert.deepEqual([card.hiddenSize, card.numLayers, card.numHeads], [64, 5, 8]);
  assert.equal(card.fim, null);
  assert.equal((await worker.conn.sendRequest(StatusRequest)).model, null);
});

test('countTokens counts with the model tokenizer, without special tokens', async () => {
  const texts = ['Once upon a time, there was a little dog.', '', 'Lily and Tom'];
  const counts = await worker.conn.sendRequest(CountTokensRequest, { path: STORIES, texts });
  assert.deepEqual(
    counts,
    texts.map((t) => model.tokenizer.encode(t, { addSpecialTokens: false }).length),
  );
  assert.ok(counts[0] > 5);
});

test('a model that cannot be opened and malformed params are one-line errors', async () => {
  await rejectsWith(worker.conn.sendRequest(DescribeModelRequest, { path: '/nonexistent/model' }), ErrorCodes.ModelLoad, /nonexistent/);
  await rejectsWith(
    worker.conn.sendRequest(CountTokensRequest, { path: STORIES, texts: [1] } as never),
    ErrorCodes.InvalidInput,
    /texts\[0\]/,
  );
});

test('adapters/list judges fit against a named model when none is loaded', async () => {
  const dir = tempDir();
  const meta = untrainedSummary(model);
  writeAdapter(path.join(dir, 'fits.safetensors'), newAdapter(model.config, 2, 2, 1), meta, model.config);
  writeAdapter(
    path.join(dir, 'other.safetensors'),
    newAdapter(model.config, 2, 2, 1),
    { ...meta, base_fingerprint: 'f'.repeat(16) },
    model.config,
  );
  const list = await worker.conn.sendRequest(AdapterListRequest, { dirs: [dir], model: STORIES });
  assert.deepEqual(
    list.map((a) => [a.name, a.compatible]),
    [
      ['fits', true],
      ['other', false],
    ],
  );
  const unloaded = await worker.conn.sendRequest(AdapterListRequest, { dirs: [dir] });
  assert.ok(unloaded.every((a) => !a.compatible));
});

test('fill-in-the-middle tokens are found when the vocabulary has all three', () => {
  assert.equal(fimTokens(new FakeTokenizer()), null);
  const dir = copyOfStories();
  const file = path.join(dir, 'tokenizer.json');
  const json = JSON.parse(fs.readFileSync(file, 'utf8'));
  ['<|fim_prefix|>', '<|fim_suffix|>', '<|fim_middle|>'].forEach((content, i) =>
    json.added_tokens.push({ id: 512 + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }),
  );
  const tok = new HfTokenizer(json, {}, file);
  assert.deepEqual(fimTokens(tok), { prefix: '<|fim_prefix|>', suffix: '<|fim_suffix|>', middle: '<|fim_middle|>' });
  // The prompt format relies on the tokenizer reading the tokens inside text as single tokens.
  assert.deepEqual(tok.encode('<|fim_prefix|>a<|fim_suffix|>', { addSpecialTokens: false }).slice(0, 1), [512]);
});

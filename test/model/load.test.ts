import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { ModelLoadError } from '../../src/model/errors';
import { loadModel } from '../../src/model/load';
import { writeSafetensors } from '../../src/model/safetensors';
import { copyOfStories, STORIES } from './paths';

async function rejectsWith(dir: string, ...parts: string[]): Promise<void> {
  await assert.rejects(loadModel(dir), (err: Error) => {
    assert.ok(err instanceof ModelLoadError, `not a ModelLoadError: ${err}`);
    for (const part of parts) assert.ok(err.message.includes(part), `"${err.message}" does not mention ${part}`);
    return true;
  });
}

function editJson(file: string, edit: (json: Record<string, unknown>) => void): void {
  const json = JSON.parse(fs.readFileSync(file, 'utf8'));
  edit(json);
  fs.writeFileSync(file, JSON.stringify(json));
}

test('loads stories260K', async () => {
  const model = await loadModel(STORIES);
  assert.equal(model.name, 'stories260K');
  assert.equal(model.source, STORIES);
  assert.equal(model.config.hiddenSize, 64);
  assert.deepEqual(model.generation, { bosTokenId: 1, eosTokenIds: [2] });
  assert.match(model.fingerprint, /^[0-9a-f]{16}$/);
  assert.equal(model.weights.tensors.size, 2 + 9 * 5);
  assert.equal(model.weights.f32('model.embed_tokens.weight').length, 512 * 64);
  assert.deepEqual(model.tokenizer.encode('Once upon a time'), [1, 403, 407, 261, 378]);
});

test('reads generation_config.json eos lists and sampling defaults', async () => {
  const dir = copyOfStories();
  fs.writeFileSync(
    path.join(dir, 'generation_config.json'),
    JSON.stringify({
      bos_token_id: 1,
      eos_token_id: [1, 2],
      temperature: 0.7,
      top_p: 0.9,
      top_k: 40,
      repetition_penalty: 1.1,
      max_new_tokens: 99,
    }),
  );
  const model = await loadModel(dir);
  assert.deepEqual(model.generation, {
    bosTokenId: 1,
    eosTokenIds: [1, 2],
    temperature: 0.7,
    topP: 0.9,
    topK: 40,
    repetitionPenalty: 1.1,
    maxNewTokens: 99,
  });
});

test('the fingerprint changes with the config and not with the folder name', async () => {
  const base = await loadModel(STORIES);
  const same = copyOfStories();
  assert.equal((await loadModel(same)).fingerprint, base.fingerprint);
  const other = copyOfStories();
  editJson(path.join(other, 'config.json'), (c) => (c.rope_theta = 500000));
  assert.notEqual((await loadModel(other)).fingerprint, base.fingerprint);
});

test('missing files are named', async () => {
  const noTokenizer = copyOfStories();
  fs.rmSync(path.join(noTokenizer, 'tokenizer.json'));
  await rejectsWith(noTokenizer, 'tokenizer.json', 'not found');
  const noConfig = copyOfStories();
  fs.rmSync(path.join(noConfig, 'config.json'));
  await rejectsWith(noConfig, 'config.json', 'not found');
  const noWeights = copyOfStories();
  fs.rmSync(path.join(noWeights, 'model.safetensors'));
  await rejectsWith(noWeights, 'model.safetensors');
  await rejectsWith(path.join(STORIES, 'nope'), 'nope', 'not found');
});

test('an unsupported config is refused naming the field', async () => {
  const dir = copyOfStories();
  editJson(path.join(dir, 'config.json'), (c) => (c.rope_scaling = { rope_type: 'dynamic', factor: 2 }));
  await rejectsWith(dir, 'config.json', 'rope_scaling', '"dynamic"');
});

test('a weight of the wrong shape or a missing weight is named with both shapes', async () => {
  const dir = copyOfStories();
  editJson(path.join(dir, 'config.json'), (c) => (c.intermediate_size = 170));
  await rejectsWith(dir, 'model.layers.0.mlp.gate_proj.weight', '[172,64]', '[170,64]');
  const untied = copyOfStories();
  editJson(path.join(untied, 'config.json'), (c) => (c.tie_word_embeddings = false));
  await rejectsWith(untied, 'missing weight "lm_head.weight"', '[512,64]');
});

test('a truncated model.safetensors is refused naming the tensor', async () => {
  const dir = copyOfStories();
  const file = path.join(dir, 'model.safetensors');
  fs.truncateSync(file, fs.statSync(file).size - 4);
  await rejectsWith(dir, 'model.safetensors: truncated: tensor', 'but the file has');
});

test('an unsupported dtype is refused naming the tensor', async () => {
  const dir = copyOfStories();
  writeSafetensors(path.join(dir, 'model.safetensors'), [{ name: 'x', dtype: 'F32', shape: [1], data: new Float32Array(1) }], {});
  const bytes = fs.readFileSync(path.join(dir, 'model.safetensors'));
  fs.writeFileSync(path.join(dir, 'model.safetensors'), Buffer.from(bytes.toString('latin1').replace('"F32"', '"I32"'), 'latin1'));
  await rejectsWith(dir, 'tensor "x"', '"I32"');
});

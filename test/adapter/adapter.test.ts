import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { readAdapter, writeAdapter } from '../../src/adapter/file';
import { checkAdapterFits } from '../../src/adapter/fit';
import { defaultTokens, newAdapter } from '../../src/adapter/new';
import type { AdapterSummary } from '../../src/adapter/types';
import { AdapterError } from '../../src/adapter/errors';
import { loadModel } from '../../src/model/load';
import { readSafetensorsBuffer, writeSafetensors } from '../../src/model/safetensors';
import type { BaseModel } from '../../src/model/types';
import { copyOfStories, STORIES, tempDir } from '../model/paths';

let model: BaseModel;
test.before(async () => {
  model = await loadModel(STORIES);
});

const summary = (): AdapterSummary => ({
  base_model: model.name,
  base_fingerprint: model.fingerprint,
  method: 'sft',
  examples: 120,
  epochs: 3,
  train_loss: 1.25,
  val_loss: null,
  date: '2025-01-02T03:04:05.000Z',
  extra: { name: 'my style', description: 'short sentences' },
});

function loadError(...parts: string[]) {
  return (err: Error) => {
    assert.ok(err instanceof AdapterError, `not an AdapterError: ${err}`);
    for (const part of parts) assert.ok(err.message.includes(part), `"${err.message}" does not mention ${part}`);
    return true;
  };
}

test('default tokens are ceil(4096 / d) clamped to [1, 64]', () => {
  assert.equal(defaultTokens({ hiddenSize: 4096 }), 1);
  assert.equal(defaultTokens({ hiddenSize: 896 }), 5);
  assert.equal(defaultTokens({ hiddenSize: 64 }), 64);
  assert.equal(defaultTokens({ hiddenSize: 16 }), 64);
  assert.equal(defaultTokens({ hiddenSize: 10000 }), 1);
});

test('a new adapter has seeded N(0, 1) prefix and zero gates', () => {
  const a = newAdapter(model.config, 'auto', 2, 7);
  assert.equal(a.tokens, 64);
  assert.equal(a.prefix.length, 64 * 64);
  assert.equal(a.gates.length, 3 * 8);
  assert.ok(a.gates.every((g) => Object.is(g, 0)));
  assert.deepEqual(newAdapter(model.config, 'auto', 2, 7).prefix, a.prefix);
  assert.notDeepEqual(newAdapter(model.config, 'auto', 2, 8).prefix, a.prefix);
  const mean = a.prefix.reduce((s, v) => s + v, 0) / a.prefix.length;
  const variance = a.prefix.reduce((s, v) => s + (v - mean) ** 2, 0) / a.prefix.length;
  assert.ok(Math.abs(mean) < 0.05, `mean ${mean}`);
  assert.ok(Math.abs(variance - 1) < 0.08, `variance ${variance}`);
  assert.throws(() => newAdapter(model.config, 0, 2, 1), /tokens/);
  assert.throws(() => newAdapter(model.config, 4, 5, 1), /start layer/);
});

test('writes and reads back an adapter with its metadata', () => {
  const dir = tempDir();
  const file = path.join(dir, 'style.safetensors');
  const adapter = newAdapter(model.config, 10, 2, 1);
  adapter.gates[5] = 0.25;
  writeAdapter(file, adapter, summary(), model.config);
  assert.deepEqual(fs.readdirSync(dir), ['style.safetensors']);
  const raw = readSafetensorsBuffer(fs.readFileSync(file), 'style.safetensors');
  assert.deepEqual(raw.tensors.get('prefix')!.shape, [10, 64]);
  assert.deepEqual(raw.tensors.get('gates')!.shape, [3, 8]);
  assert.ok(Object.values(raw.metadata).every((v) => typeof v === 'string'));
  const back = readAdapter(file);
  assert.deepEqual(back.prefix, adapter.prefix);
  assert.deepEqual(back.gates, adapter.gates);
  assert.equal(back.tokens, 10);
  assert.equal(back.startLayer, 2);
  assert.deepEqual(back.metadata, { ...summary(), format: 'aligner/1', tokens: 10, start_layer: 2 });
  checkAdapterFits(back, model, file);
});

test('writeAdapter refuses arrays that do not fit the shape', () => {
  const adapter = newAdapter(model.config, 4, 2, 1);
  const file = path.join(tempDir(), 'bad.safetensors');
  assert.throws(() => writeAdapter(file, { ...adapter, gates: new Float32Array(5) }, summary(), model.config), /bad\.safetensors.*gates 5/);
  assert.equal(fs.existsSync(file), false);
});

test('an adapter for another base model is refused naming both models and fingerprints', async () => {
  const otherDir = copyOfStories();
  const configFile = path.join(otherDir, 'config.json');
  fs.writeFileSync(configFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(configFile, 'utf8')), rms_norm_eps: 1e-6 }));
  const other = await loadModel(otherDir);
  assert.notEqual(other.fingerprint, model.fingerprint);
  const file = path.join(tempDir(), 'x.safetensors');
  writeAdapter(file, newAdapter(model.config, 2, 2, 1), summary(), model.config);
  const adapter = readAdapter(file);
  assert.throws(
    () => checkAdapterFits(adapter, { ...other, name: 'other' }, file),
    loadError(
      `adapter "x.safetensors" was trained for base model "stories260K" (fingerprint ${model.fingerprint}), not for "other" (fingerprint ${other.fingerprint})`,
    ),
  );
});

test('an adapter whose shapes do not fit the model is refused', () => {
  const dir = tempDir();
  const wide = path.join(dir, 'wide.safetensors');
  writeAdapter(wide, newAdapter({ ...model.config, hiddenSize: 32 }, 2, 2, 1), summary(), { ...model.config, hiddenSize: 32 });
  assert.throws(() => checkAdapterFits(readAdapter(wide), model, wide), loadError('wide.safetensors', '"prefix"', 'hidden size 64'));
  const deep = path.join(dir, 'deep.safetensors');
  writeAdapter(deep, newAdapter({ ...model.config, numLayers: 6 }, 2, 2, 1), summary(), { ...model.config, numLayers: 6 });
  assert.throws(() => checkAdapterFits(readAdapter(deep), model, deep), loadError('deep.safetensors', '"gates"', '[3, 8]'));
});

test('readAdapter validates format, tensor shapes, metadata and values', () => {
  const dir = tempDir();
  const meta = {
    format: 'aligner/1',
    base_model: 'm',
    base_fingerprint: 'f',
    tokens: '2',
    start_layer: '2',
    method: 'sft',
    examples: '1',
    epochs: '1',
    date: 'd',
  };
  const write = (name: string, prefix: number[], prefixShape: number[], metadata: Record<string, string>) => {
    const file = path.join(dir, name);
    writeSafetensors(
      file,
      [
        { name: 'prefix', dtype: 'F32', shape: prefixShape, data: new Float32Array(prefix) },
        { name: 'gates', dtype: 'F32', shape: [3, 1], data: new Float32Array(3) },
      ],
      metadata,
    );
    return file;
  };
  assert.doesNotThrow(() => readAdapter(write('ok.safetensors', [1, 2, 3, 4], [2, 2], meta)));
  assert.throws(
    () => readAdapter(write('fmt.safetensors', [1, 2, 3, 4], [2, 2], { ...meta, format: 'peft' })),
    loadError('fmt.safetensors', '"format"', '"peft"'),
  );
  assert.throws(() => readAdapter(write('n.safetensors', [1, 2, 3, 4], [4, 1], meta)), loadError('n.safetensors', '"prefix"', '[4,1]'));
  assert.throws(
    () => readAdapter(write('nan.safetensors', [1, NaN, 3, 4], [2, 2], meta)),
    loadError('nan.safetensors', '"prefix"', 'index 1'),
  );
  assert.throws(
    () => readAdapter(write('m.safetensors', [1, 2, 3, 4], [2, 2], { ...meta, method: 'lora' })),
    loadError('m.safetensors', '"method"'),
  );
  const { base_fingerprint: _, ...noFingerprint } = meta;
  assert.throws(
    () => readAdapter(write('fp.safetensors', [1, 2, 3, 4], [2, 2], noFingerprint)),
    loadError('fp.safetensors', '"base_fingerprint"', 'missing'),
  );
  const cut = path.join(dir, 'cut.safetensors');
  fs.writeFileSync(cut, fs.readFileSync(path.join(dir, 'ok.safetensors')).subarray(0, 100));
  assert.throws(() => readAdapter(cut), loadError('cut.safetensors'));
});

// Bad input through the CLI: one clear line naming the file and what is wrong,
// a non-zero exit, and nothing half-written.

import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { newAdapter } from '../../src/adapter/new';
import { writeAdapter } from '../../src/adapter/file';
import { loadModel } from '../../src/model/load';
import { copyOfStories, SHARED, STORIES, tempDir } from '../model/paths';
import { aligner } from './cli';

function assertOneLineError(r: ReturnType<typeof aligner>, pattern: RegExp): void {
  assert.notEqual(r.status, 0);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], pattern);
}

test('truncated safetensors', () => {
  const dir = copyOfStories();
  const file = path.join(dir, 'model.safetensors');
  fs.truncateSync(file, fs.statSync(file).size - 1000);
  assertOneLineError(aligner('generate', '--model', dir, '--prompt', 'Hi'), /model\.safetensors: truncated: tensor ".+" needs bytes/);
});

test('corrupt safetensors header', () => {
  const dir = copyOfStories();
  const file = path.join(dir, 'model.safetensors');
  const bytes = fs.readFileSync(file);
  bytes.write('{{{{', 8);
  fs.writeFileSync(file, bytes);
  assertOneLineError(aligner('score', '--model', dir, '--text', 'Hi there'), /model\.safetensors: .*JSON/i);
});

test('config of an unsupported architecture', () => {
  const dir = copyOfStories();
  const file = path.join(dir, 'config.json');
  const config = JSON.parse(fs.readFileSync(file, 'utf8'));
  fs.writeFileSync(file, JSON.stringify({ ...config, architectures: ['GPT2LMHeadModel'], model_type: 'gpt2' }));
  assertOneLineError(
    aligner('generate', '--model', dir, '--prompt', 'Hi'),
    /config\.json: unsupported architecture "GPT2LMHeadModel" \(field "architectures"\)/,
  );
});

test('malformed JSONL line names file and line; no adapter is written', () => {
  const dir = tempDir();
  const data = path.join(dir, 'mine.jsonl');
  fs.writeFileSync(data, '{"text": "Once upon a time."}\n{"text": "ok"}\n{"text": broken}\n');
  const out = path.join(dir, 'out.safetensors');
  assertOneLineError(aligner('train', '--model', STORIES, '--data', data, '--out', out), /mine\.jsonl:3: /);
  assert.equal(fs.existsSync(out), false);
  assert.deepEqual(fs.readdirSync(dir), ['mine.jsonl']);
});

test('a record of the wrong form names its field', () => {
  const dir = tempDir();
  const data = path.join(dir, 'mixed.jsonl');
  fs.writeFileSync(data, '{"prompt": "a", "completion": "b"}\n{"prompt": "a", "completion": 3}\n');
  assertOneLineError(
    aligner('train', '--model', STORIES, '--data', data, '--out', path.join(dir, 'o.safetensors')),
    /mixed\.jsonl:2: .*completion/,
  );
});

test('an adapter made for another base model is refused', async () => {
  const other = copyOfStories();
  const configFile = path.join(other, 'config.json');
  const config = JSON.parse(fs.readFileSync(configFile, 'utf8'));
  fs.writeFileSync(configFile, JSON.stringify({ ...config, rope_theta: 20000 }));
  const otherModel = await loadModel(other);
  const file = path.join(tempDir(), 'other.safetensors');
  const summary = {
    base_model: 'other',
    base_fingerprint: otherModel.fingerprint,
    method: 'sft' as const,
    examples: 1,
    epochs: 1,
    train_loss: null,
    val_loss: null,
    date: new Date().toISOString(),
    extra: {},
  };
  writeAdapter(file, newAdapter(otherModel.config, 1, 2, 0), summary, otherModel.config);
  assertOneLineError(
    aligner('generate', '--model', STORIES, '--adapter', file, '--prompt', 'Hi'),
    /adapter "other\.safetensors" was trained for base model "other" \(fingerprint [0-9a-f]+\), not for "stories260K"/,
  );
});

test('a bad flag value is a usage error', () => {
  assertOneLineError(aligner('generate', '--model', STORIES, '--prompt', 'x', '--top-p', 'abc'), /--top-p: expected a number, got "abc"/);
  assertOneLineError(
    aligner('train', '--model', STORIES, '--data', 'x.jsonl', '--out', 'x.bin'),
    /--out: the adapter file must end in \.safetensors/,
  );
  assertOneLineError(
    aligner('generate', '--model', STORIES, '--quant', 'q3', '--prompt', 'x'),
    /--quant: expected auto, f32, q8, q4 or stored, got "q3"/,
  );
  const data = path.join(SHARED, 'datasets', 'stories-style', 'shout.val.jsonl');
  assertOneLineError(
    aligner('train', '--model', STORIES, '--data', data, '--out', 'x.safetensors', '--micro-batch', '0'),
    /--micro-batch: expected a whole number ≥ 1, got "0"/,
  );
  assertOneLineError(
    aligner('train', '--model', STORIES, '--data', data, '--out', 'x.safetensors', '--recompute', 'yes'),
    /--recompute: expected on, off, auto, got "yes"/,
  );
});

test('a negative refine weight is refused before the anchor’s answers are sampled', () => {
  const dir = tempDir();
  const stories = path.join(dir, 'stories.jsonl');
  fs.writeFileSync(stories, '{"text": "Once upon a time, there was a cat."}\n');
  const adapter = path.join(dir, 'a.safetensors');
  const trained = aligner('train', '--model', STORIES, '--data', stories, '--out', adapter, '--steps', '1', '--val-split', '0');
  assert.equal(trained.status, 0, trained.stderr);
  const pairs = path.join(dir, 'pairs.jsonl');
  fs.writeFileSync(pairs, '{"prompt": "Once upon a time", "chosen": ", a cat ran!", "rejected": ", a cat ran."}\n');
  const out = path.join(dir, 'r.safetensors');
  for (const [flag, name] of [
    ['--edit-weight=-1', 'edit weight'],
    ['--anchor=-2', 'anchor weight'],
  ]) {
    const r = aligner('refine', '--model', STORIES, '--adapter', adapter, '--data', pairs, '--out', out, flag);
    assertOneLineError(r, new RegExp(`${name} must be ≥ 0, got -\\d`));
  }
  assert.equal(fs.existsSync(out), false);
});

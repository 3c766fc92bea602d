// `aligner train` on the stories-style "shout" set: the validation loss drops
// below the base model's, the adapter loads in `aligner generate`, and the same
// seed reproduces the adapter bit for bit.

import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'node:test';
import { readAdapter } from '../../src/adapter/file';
import { makeBatches } from '../../src/data/batches';
import { toExamples } from '../../src/data/examples';
import { readJsonl } from '../../src/data/jsonl';
import { Engine } from '../../src/engine/engine';
import { loadModel } from '../../src/model/load';
import { SHARED, STORIES, tempDir } from '../model/paths';
import { aligner, CLI } from './cli';

const DATA = path.join(SHARED, 'datasets', 'stories-style');
const VAL = path.join(DATA, 'shout.val.jsonl');

function trainShout(out: string) {
  const r = aligner(
    'train',
    '--model',
    STORIES,
    '--data',
    path.join(DATA, 'shout.train.jsonl'),
    '--val-data',
    VAL,
    '--out',
    out,
    '--tokens',
    '1',
    '--steps',
    '60',
    '--batch',
    '8',
    '--seed',
    '7',
  );
  assert.equal(r.status, 0, r.stderr);
  return r.stderr;
}

/** Token-mean cross-entropy of the base model on the validation set, computed independently of the trainer. */
async function baseValidationLoss(): Promise<number> {
  const model = await loadModel(STORIES);
  const engine = await Engine.create(model);
  const set = readJsonl(VAL);
  if (set.form !== 'text') throw new Error('expected text records');
  const examples = toExamples(set.records, 'text', model.tokenizer, { maxLen: 512 }).items;
  let total = 0;
  let count = 0;
  for (const batch of makeBatches(examples, { batchSize: 16, seed: 0, shuffle: false, padId: 0 })) {
    total -= (await engine.sequenceLogps(batch, null)).reduce((a, b) => a + b, 0);
    count += batch.mask.reduce((a, b) => a + b, 0);
  }
  await engine.dispose();
  return total / count;
}

test('train a 1-token shout adapter: lower validation loss, loadable, reproducible', async () => {
  const dir = tempDir();
  const first = path.join(dir, 'shout.safetensors');
  const log = trainShout(first);
  assert.match(log, /step 60\/60/);
  assert.match(log, /wrote .*shout\.safetensors/);

  const adapter = readAdapter(first);
  assert.equal(adapter.tokens, 1);
  assert.equal(adapter.startLayer, 2);
  const base = await baseValidationLoss();
  assert.ok(
    adapter.metadata.val_loss !== null && adapter.metadata.val_loss < base - 0.01,
    `validation loss ${adapter.metadata.val_loss} vs base ${base}`,
  );

  const gen = aligner('generate', '--model', STORIES, '--adapter', first, '--prompt', 'Once upon a time', '--max-new-tokens', '20');
  assert.equal(gen.status, 0, gen.stderr);
  assert.ok(gen.stdout.startsWith('Once upon a time') && gen.stdout.length > 'Once upon a time'.length + 10, gen.stdout);

  const second = path.join(dir, 'again.safetensors');
  trainShout(second);
  const again = readAdapter(second);
  assert.deepEqual(Buffer.from(again.prefix.buffer), Buffer.from(adapter.prefix.buffer), 'prefix bit-identical');
  assert.deepEqual(Buffer.from(again.gates.buffer), Buffer.from(adapter.gates.buffer), 'gates bit-identical');
});

test('DPO against an earlier adapter as reference writes a dpo adapter', () => {
  const dir = tempDir();
  const sft = path.join(dir, 'sft.safetensors');
  assert.equal(
    aligner('train', '--model', STORIES, '--data', path.join(DATA, 'shout.train.jsonl'), '--out', sft, '--tokens', '2', '--steps', '3')
      .status,
    0,
  );
  const dpo = path.join(dir, 'dpo.safetensors');
  const r = aligner(
    'train',
    '--model',
    STORIES,
    '--method',
    'dpo',
    '--data',
    path.join(DATA, 'shout.dpo.val.jsonl'),
    '--out',
    dpo,
    '--init',
    sft,
    '--reference',
    sft,
    '--steps',
    '4',
    '--batch',
    '4',
    '--val-split',
    '0.1',
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /trained dpo adapter \(2 prefix tokens, start layer 2\)/);
  // Policy = reference at the start, so the initial validation loss is exactly log 2.
  assert.match(r.stderr, /validation loss 0\.6931 ->/);
  assert.equal(readAdapter(dpo).metadata.method, 'dpo');
});

test('generate --chat reads messages from stdin and streams answers', () => {
  const r = spawnSync(process.execPath, [CLI, 'generate', '--model', STORIES, '--chat', '--max-new-tokens', '12', '--temperature', '0'], {
    input: 'Once upon a time\nLily and Tom went to the park\n',
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  const answers = r.stdout.trim().split('\n');
  assert.equal(answers.length, 2, r.stdout);
  assert.ok(answers.every((a) => a.length > 10));
});

test('train --quant q4: lower validation loss than the base, tagged q4, loads at f32 with a one-line notice', () => {
  const dir = tempDir();
  // Its own cache folder: the conversions this test makes are its own.
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ALIGNER_CACHE_DIR: path.join(dir, 'cache') } });
  const out = path.join(dir, 'shout-q4.safetensors');
  const r = run(
    'train',
    '--model',
    STORIES,
    '--quant',
    'q4',
    '--data',
    path.join(DATA, 'shout.train.jsonl'),
    '--val-data',
    VAL,
    '--out',
    out,
    '--tokens',
    '4',
    '--steps',
    '30',
    '--batch',
    '8',
    '--seed',
    '7',
  );
  assert.equal(r.status, 0, r.stderr);
  const [, before, after] = /validation loss (\d+\.\d+) -> (\d+\.\d+)/.exec(r.stderr) ?? [];
  assert.ok(Number(after) < Number(before) - 0.01, r.stderr);
  assert.equal(readAdapter(out).metadata.quantization, 'q4');

  const gen = run(
    'generate',
    '--model',
    STORIES,
    '--quant',
    'f32',
    '--adapter',
    out,
    '--prompt',
    'Once upon a time',
    '--max-new-tokens',
    '10',
  );
  assert.equal(gen.status, 0, gen.stderr);
  assert.equal(gen.stderr.trim(), 'aligner: adapter "shout-q4.safetensors" was trained on the q4 base; using it with the f32 base');
});

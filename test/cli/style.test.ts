// A reduced `npm run stylebench`: `aligner train` with its defaults (no training
// flags) on the first 320 shout stories must produce an adapter whose samples
// shout, where the base model's do not (mean "!" share about 0.04).

import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { readAdapter } from '../../src/adapter/file';
import { Engine } from '../../src/engine/engine';
import { loadModel } from '../../src/model/load';
import { adherence, sampleStories, STYLE_SAMPLING } from '../bench/style';
import { STORIES, STYLE_DIR, tempDir } from '../model/paths';
import { aligner } from './cli';

function firstLines(file: string, n: number, dir: string): string {
  const out = path.join(dir, `${n}-${path.basename(file)}`);
  fs.writeFileSync(out, fs.readFileSync(file, 'utf8').split('\n').slice(0, n).join('\n') + '\n');
  return out;
}

test('the default settings learn the shout style: samples end their sentences with "!"', async (t) => {
  const dir = tempDir();
  const data = firstLines(path.join(STYLE_DIR, 'shout.train.jsonl'), 320, dir);
  const val = firstLines(path.join(STYLE_DIR, 'shout.val.jsonl'), 40, dir);
  const out = path.join(dir, 'shout.safetensors');
  const r = aligner('train', '--model', STORIES, '--data', data, '--val-data', val, '--out', out);
  assert.equal(r.status, 0, r.stderr);

  const engine = await Engine.create(await loadModel(STORIES));
  const samples = await sampleStories(engine, 'Once upon a time', readAdapter(out), {
    count: 20,
    ...STYLE_SAMPLING,
    seed: 900001,
    maxNewTokens: 160,
  });
  await engine.dispose();
  const score = adherence('shout', samples);
  t.diagnostic(`mean "!" share ${score.meanBang?.toFixed(3)}, adherence ${score.adherence}`);
  assert.ok(score.meanBang! >= 0.5, `mean "!" share ${score.meanBang}, adherence ${score.adherence}`);
});

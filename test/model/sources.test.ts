// Model discovery in fake stores under a temporary HOME: the Ollama store
// (manifests → blobs, OLLAMA_MODELS), LM Studio's folders, the Hugging Face hub
// cache (snapshots of symlinks, HF_HOME), the download folder; the names
// `--model` accepts; and `aligner models` / `aligner generate` on them.

import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { test } from 'node:test';
import { ModelLoadError } from '../../src/model/errors';
import { openModel } from '../../src/model/open';
import { discoverModels, resolveModel, type ModelEntry } from '../../src/model/sources';
import { alignerWithEnv } from '../cli/cli';
import { hfCachePut, ollamaPull } from './fake_stores';
import { str, writeStoriesGguf } from './gguf_writer';
import { golden, STORIES, tempDir } from './paths';

const STORIES_PARAMS = 64 * 512 + 5 * (64 + 64 * 64 + 32 * 64 * 2 + 64 * 64 + 64 + 3 * 172 * 64) + 64;

const home = tempDir();
const work = tempDir();
let models: ModelEntry[];

test.before(async () => {
  const f16 = path.join(work, 'stories-f16.gguf');
  const q8 = path.join(work, 'stories-q8_0.gguf');
  const gemma = path.join(work, 'gemma.gguf');
  await writeStoriesGguf(f16, 'F16');
  await writeStoriesGguf(q8, 'Q8_0');
  await writeStoriesGguf(gemma, 'F32', { extraMeta: { 'general.architecture': str('gemma2') } });

  const ollama = path.join(home, '.ollama', 'models');
  ollamaPull(ollama, 'stories', '260k', f16);
  ollamaPull(ollama, 'gemma2', '2b', gemma);
  ollamaPull(ollama, 'ghost', 'latest', null);

  const lms = path.join(home, '.lmstudio', 'models', 'karpathy', 'stories260K-GGUF');
  fs.mkdirSync(lms, { recursive: true });
  fs.copyFileSync(q8, path.join(lms, 'stories260K-Q8_0.gguf'));
  fs.writeFileSync(path.join(lms, 'mmproj-stories.gguf'), 'not a model');
  const oldLms = path.join(home, '.cache', 'lm-studio', 'models', 'someone', 'old');
  fs.mkdirSync(oldLms, { recursive: true });
  fs.copyFileSync(f16, path.join(oldLms, 'old-f16.gguf'));

  const hub = path.join(home, '.cache', 'huggingface', 'hub');
  const files = Object.fromEntries(
    ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'].map((f) => [
      f,
      path.join(STORIES, f),
    ]),
  );
  hfCachePut(hub, 'karpathy/stories260K', files);

  models = await discoverModels({ home, env: {}, downloads: path.join(home, 'downloads') });
});

const byId = (id: string) => {
  const m = models.find((e) => e.id === id || e.id.endsWith(id));
  assert.ok(m, `${id} in ${models.map((e) => e.id).join(', ')}`);
  return m;
};

test('the Ollama store: named NAME:TAG, with architecture, size, parameters and quantization; bad ones with the reason', () => {
  const stories = byId('ollama:stories:260k');
  assert.equal(stories.source, 'ollama');
  assert.equal(stories.architecture, 'llama');
  assert.equal(stories.quantization, 'F16');
  assert.equal(stories.parameters, STORIES_PARAMS);
  assert.equal(stories.sizeBytes, fs.statSync(stories.location).size);
  assert.match(path.basename(stories.location), /^sha256-[0-9a-f]{64}$/);
  assert.equal(stories.unsupported, null);
  assert.match(byId('ollama:gemma2:2b').unsupported!, /unsupported architecture "gemma2"; supported: llama, mistral, qwen2/);
  assert.match(byId('ollama:ghost:latest').unsupported!, /points at blob sha256:[0-9a-f]{64}, which is missing/);
});

test('LM Studio (new and old folders), the Hugging Face cache, supported models listed first', () => {
  const lms = byId('stories260K-Q8_0.gguf');
  assert.equal(lms.source, 'lmstudio');
  assert.equal(lms.quantization, 'Q8_0');
  assert.equal(byId('old-f16.gguf').source, 'lmstudio');
  assert.ok(!models.some((m) => m.id.includes('mmproj')));
  const hf = byId('karpathy/stories260K');
  assert.deepEqual(
    [hf.source, hf.architecture, hf.quantization, hf.parameters, hf.unsupported],
    ['hf-cache', 'LlamaForCausalLM', 'F32', STORIES_PARAMS, null],
  );
  const firstUnsupported = models.findIndex((m) => m.unsupported);
  assert.ok(
    models.slice(firstUnsupported).every((m) => m.unsupported),
    'unsupported ones last',
  );
  assert.equal(models.length, 6);
});

test('OLLAMA_MODELS and HF_HOME move the stores', async () => {
  const elsewhere = tempDir();
  fs.renameSync(path.join(home, '.ollama', 'models'), path.join(elsewhere, 'ollama'));
  fs.mkdirSync(path.join(elsewhere, 'hf'));
  fs.renameSync(path.join(home, '.cache', 'huggingface', 'hub'), path.join(elsewhere, 'hf', 'hub'));
  try {
    const env = { OLLAMA_MODELS: path.join(elsewhere, 'ollama'), HF_HOME: path.join(elsewhere, 'hf') };
    const ids = (await discoverModels({ home, env })).map((m) => m.id);
    assert.ok(ids.includes('ollama:stories:260k') && ids.includes('karpathy/stories260K'), ids.join(', '));
    assert.ok(!(await discoverModels({ home, env: {} })).some((m) => m.id === 'ollama:stories:260k'));
  } finally {
    fs.renameSync(path.join(elsewhere, 'ollama'), path.join(home, '.ollama', 'models'));
    fs.renameSync(path.join(elsewhere, 'hf', 'hub'), path.join(home, '.cache', 'huggingface', 'hub'));
  }
});

test('--model names: ollama:NAME[:TAG], an HF cache id, a path; one-line errors otherwise', async () => {
  const opts = { home, env: {} };
  const model = await openModel('ollama:stories:260k', undefined, opts);
  assert.equal(model.name, 'ollama:stories:260k');
  assert.deepEqual(model.tokenizer.encode(golden().prompts[0].prompt), golden().prompts[0].prompt_ids);
  assert.equal((await openModel('karpathy/stories260K', undefined, opts)).config.hiddenSize, 64);
  assert.equal(resolveModel(byId('old-f16.gguf').location, opts).location, byId('old-f16.gguf').location);
  const fails = (spec: string, pattern: RegExp) =>
    assert.throws(
      () => resolveModel(spec, opts),
      (e: Error) => e instanceof ModelLoadError && pattern.test(e.message) && !e.message.includes('\n'),
    );
  fails(
    'ollama:stories',
    /ollama:stories: not in the Ollama store \(.*\); installed: ollama:gemma2:2b, ollama:ghost:latest, ollama:stories:260k/,
  );
  fails('ollama:ghost', /manifest .* points at sha256:[0-9a-f]{64}, which is missing from .*blobs/);
  fails('nobody/nothing', /nobody\/nothing: no such folder or file, and not in the Hugging Face cache/);
  fails('ollama:../x', /not an Ollama model name/);
  await assert.rejects(openModel('ollama:gemma2:2b', undefined, opts), /unsupported architecture "gemma2"/);
});

test('aligner models lists the stores; aligner generate runs an Ollama model by name', () => {
  const env = { HOME: home, OLLAMA_MODELS: '', HF_HOME: '', HF_HUB_CACHE: '' };
  const list = alignerWithEnv(env, 'models');
  assert.equal(list.status, 0, list.stderr);
  const lines = list.stdout.trim().split('\n');
  assert.match(lines[0], /^MODEL\s+SOURCE\s+ARCH\s+PARAMS\s+TYPE\s+SIZE$/);
  assert.ok(
    lines.some((l) => /^ollama:stories:260k\s+ollama\s+llama\s+\d+K\s+F16\s+\d+ KB$/.test(l)),
    list.stdout,
  );
  assert.ok(
    lines.some((l) => /^ollama:gemma2:2b .*\(unsupported: unsupported architecture "gemma2"/.test(l)),
    list.stdout,
  );
  const json = JSON.parse(alignerWithEnv(env, 'models', '--json').stdout) as ModelEntry[];
  assert.equal(json.length, 6);

  const g = golden().prompts[0];
  const out = alignerWithEnv(
    env,
    'generate',
    '--model',
    'ollama:stories:260k',
    '--prompt',
    g.prompt,
    '--temperature',
    '0',
    '--max-new-tokens',
    '20',
  );
  assert.equal(out.status, 0, out.stderr);
  assert.ok(out.stdout.trimEnd().length > g.prompt.length + 20 && g.text.startsWith(out.stdout.trimEnd()), `${out.stdout} vs ${g.text}`);
  const missing = alignerWithEnv(env, 'generate', '--model', 'ollama:nothing:1b', '--prompt', 'x');
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /^aligner: ollama:nothing:1b: not in the Ollama store/);
});

// The base-model fingerprint does not depend on storage: stories260K as a Hugging
// Face folder (f32 and a bf16 release), a llama2.c import and GGUF files at F32, F16,
// Q8_0 and Q4_0 share one;
// a model with one norm weight moved, or another vocabulary, gets another. Adapters
// load across storages with a one-line notice and are refused, naming both, on
// another model; adapters with the old fingerprint load on their own model file.

import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { test } from 'node:test';
import { writeAdapter } from '../../src/adapter/file';
import { newAdapter } from '../../src/adapter/new';
import { importGguf } from '../../src/model/gguf';
import { importLlama2c } from '../../src/model/llama2c';
import { loadModel } from '../../src/model/load';
import type { BaseModel } from '../../src/model/types';
import { alignerWithEnv } from '../cli/cli';
import { storiesTokenizerMeta, strings, writeModelGguf, writeStoriesGguf, type StoriesType } from './gguf_writer';
import { copyOfStories, LLAMA2C_BIN, LLAMA2C_TOKENIZER, STORIES, tempDir } from './paths';

const dir = tempDir();
const TYPES: StoriesType[] = ['F32', 'F16', 'Q8_0', 'Q4_0'];
const gguf = (type: StoriesType) => path.join(dir, `stories260K-${type}.gguf`);
const perturbed = path.join(dir, 'perturbed.gguf');
let hf: BaseModel;

test.before(async () => {
  hf = await loadModel(STORIES);
  for (const type of TYPES) await writeStoriesGguf(gguf(type), type);
  // A "fine-tune": one norm weight moved by 1 % (bf16 resolves 0.4 %).
  const norm = 'model.layers.2.post_attention_layernorm.weight';
  const moved = hf.weights.f32(norm).slice();
  moved[5] *= 1.01;
  const weights = { tensors: hf.weights.tensors, f32: (name: string) => (name === norm ? moved : hf.weights.f32(name)) };
  writeModelGguf(perturbed, { ...hf, weights }, 'Q8_0');
});

test('one fingerprint for the folder, the llama2.c import and GGUF at F32, F16, Q8_0 and Q4_0', async () => {
  assert.match(hf.fingerprint, /^[0-9a-f]{16}$/);
  assert.equal((await importLlama2c(LLAMA2C_BIN, LLAMA2C_TOKENIZER)).fingerprint, hf.fingerprint);
  for (const type of TYPES) {
    const model = await importGguf(gguf(type));
    assert.equal(model.fingerprint, hf.fingerprint, type);
    // The old fingerprint hashed the stored embedding bytes: F16 and Q8_0 ones differ from the folder's.
    assert.equal(model.legacyFingerprint === hf.legacyFingerprint, type === 'F32', `${type}: old fingerprint`);
  }
});

/** The folder as a bf16 release (torch's .to(torch.bfloat16): round to nearest even), in a copy. */
function bf16Release(): string {
  const dir = copyOfStories();
  const file = path.join(dir, 'model.safetensors');
  const header: Record<string, unknown> = {};
  const parts: Buffer[] = [];
  let offset = 0;
  for (const [name, ref] of hf.weights.tensors) {
    const x = hf.weights.f32(name);
    const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
    const out = Buffer.alloc(2 * x.length);
    for (let i = 0; i < x.length; i++) {
      const lower = bits[i] & 0xffff;
      let upper = bits[i] >>> 16;
      if (lower > 0x8000 || (lower === 0x8000 && upper & 1)) upper++;
      out.writeUInt16LE(upper, 2 * i);
    }
    header[name] = { dtype: 'BF16', shape: ref.shape, data_offsets: [offset, offset + out.length] };
    offset += out.length;
    parts.push(out);
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([length, Buffer.from(json), ...parts]));
  return dir;
}

test('a bf16 release of the folder has its fingerprint', async () => {
  const release = await loadModel(bf16Release());
  assert.equal(release.weights.tensors.get('model.norm.weight')!.dtype, 'BF16');
  assert.equal(release.fingerprint, hf.fingerprint);
});

test('another model gets another fingerprint: a moved norm weight, another vocabulary', async () => {
  assert.notEqual((await importGguf(perturbed)).fingerprint, hf.fingerprint);
  const renamed = path.join(dir, 'renamed-vocab.gguf');
  const tokens = [...(storiesTokenizerMeta()['tokenizer.ggml.tokens'].value as string[])];
  tokens[300] = `${tokens[300]}x`;
  writeModelGguf(renamed, hf, 'Q8_0', { extraMeta: { 'tokenizer.ggml.tokens': strings(tokens) } });
  assert.notEqual((await importGguf(renamed)).fingerprint, hf.fingerprint);
});

function adapterFor(fingerprint: string, quantization: string): string {
  const file = path.join(dir, `for-${fingerprint}-${quantization}.safetensors`);
  const summary = {
    base_model: 'stories260K',
    base_fingerprint: fingerprint,
    quantization,
    method: 'sft' as const,
    examples: 1,
    epochs: 1,
    train_loss: null,
    val_loss: null,
    date: new Date().toISOString(),
    extra: {},
  };
  writeAdapter(file, newAdapter(hf.config, 2, 1, 0), summary, hf.config);
  return file;
}

const generate = (model: string, adapter: string) =>
  alignerWithEnv(
    { ALIGNER_CACHE_DIR: path.join(dir, 'cache') },
    'generate',
    '--model',
    model,
    '--adapter',
    adapter,
    '--prompt',
    'Once',
    '--max-new-tokens',
    '2',
  );

test('an adapter trained on the folder at f32 loads on the Q4_0 GGUF with a one-line notice, and not on another model', () => {
  const adapter = adapterFor(hf.fingerprint, 'f32');
  const ok = generate(gguf('Q4_0'), adapter);
  assert.equal(ok.status, 0, ok.stderr);
  assert.deepEqual(ok.stderr.trim().split('\n'), [
    `aligner: adapter "${path.basename(adapter)}" was trained on the f32 base; using it with the stored base`,
  ]);
  const refused = generate(perturbed, adapter);
  assert.notEqual(refused.status, 0);
  assert.match(
    refused.stderr,
    new RegExp(
      `trained for base model "stories260K" \\(fingerprint ${hf.fingerprint}\\), not for "stories260K" \\(fingerprint [0-9a-f]{16}\\)`,
    ),
  );
});

test('an adapter with the old fingerprint loads on the model file it was trained on, and is refused on another storage', async () => {
  const q8 = await importGguf(gguf('Q8_0'));
  const adapter = adapterFor(q8.legacyFingerprint, 'f32');
  const ok = generate(gguf('Q8_0'), adapter);
  assert.equal(ok.status, 0, ok.stderr);
  const refused = generate(gguf('F16'), adapter);
  assert.notEqual(refused.status, 0);
  assert.match(
    refused.stderr,
    new RegExp(`fingerprint ${q8.legacyFingerprint}\\), not for "stories260K" \\(fingerprint ${hf.fingerprint}\\)`),
  );
});

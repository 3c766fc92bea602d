import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { ModelLoadError } from '../../src/model/errors';
import { importLlama2c, llama2cTokenizerJson } from '../../src/model/llama2c';
import { loadModel } from '../../src/model/load';
import type { BaseModel } from '../../src/model/types';
import { golden, LLAMA2C_BIN, LLAMA2C_TOKENIZER, STORIES, tempDir } from './paths';

let imported: BaseModel;
let hf: BaseModel;

test.before(async () => {
  imported = await importLlama2c(LLAMA2C_BIN, LLAMA2C_TOKENIZER);
  hf = await loadModel(STORIES);
});

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

test('the config matches the Hugging Face conversion except for the rotary layout', () => {
  assert.equal(imported.config.ropeLayout, 'interleaved');
  assert.deepEqual({ ...imported.config, ropeLayout: 'half' }, hf.config);
  assert.equal(imported.name, 'stories260K');
  assert.equal(imported.fingerprint, hf.fingerprint);
});

test('the tokenizer.json built from tok512.bin is the shipped one', () => {
  const shipped = JSON.parse(fs.readFileSync(path.join(STORIES, 'tokenizer.json'), 'utf8'));
  assert.deepEqual(llama2cTokenizerJson(LLAMA2C_TOKENIZER, 512), shipped);
});

test('the imported tokenizer encodes the golden prompts and round-trips text', () => {
  for (const p of golden().prompts) {
    assert.deepEqual(imported.tokenizer.encode(p.prompt), p.prompt_ids);
    assert.deepEqual(imported.tokenizer.encode(p.prompt), hf.tokenizer.encode(p.prompt));
  }
  for (const s of ['Hello, world!', '  two  spaces ', 'line\nbreak\ttab', 'café 日本 🙂', '']) {
    assert.equal(imported.tokenizer.decode(imported.tokenizer.encode(s), { skipSpecialTokens: true }), s);
  }
});

test('weights equal the Hugging Face ones bit for bit, q/k after the rotary row permutation', () => {
  const { numHeads, numKvHeads, headDim } = hf.config;
  for (const name of hf.weights.tensors.keys()) {
    const theirs = hf.weights.f32(name);
    const ours = imported.weights.f32(name);
    assert.deepEqual(imported.weights.tensors.get(name)!.shape, hf.weights.tensors.get(name)!.shape, name);
    const heads = name.endsWith('q_proj.weight') ? numHeads : name.endsWith('k_proj.weight') ? numKvHeads : 0;
    const expected = heads ? halfToInterleaved(theirs, heads, headDim) : theirs;
    assert.deepEqual(bits(ours), bits(expected), name);
  }
  assert.equal(imported.weights.tensors.size, hf.weights.tensors.size);
});

/** Undoes the README's permutation: HF row h*d_h + j is llama2.c row h*d_h + 2j (j < d_h/2) or 2(j - d_h/2) + 1. */
function halfToInterleaved(hfRows: Float32Array, heads: number, headDim: number): Float32Array {
  const width = hfRows.length / (heads * headDim);
  const out = new Float32Array(hfRows.length);
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < headDim; j++) {
      const source = j < headDim / 2 ? 2 * j : 2 * (j - headDim / 2) + 1;
      out.set(hfRows.subarray((h * headDim + j) * width, (h * headDim + j + 1) * width), (h * headDim + source) * width);
    }
  }
  return out;
}

test('tensors point into the checkpoint without a copy', () => {
  for (const ref of imported.weights.tensors.values()) assert.equal(ref.file, path.resolve(LLAMA2C_BIN));
});

test('a truncated checkpoint and a missing tokenizer are named', async () => {
  const dir = tempDir();
  const cut = path.join(dir, 'cut.bin');
  fs.writeFileSync(cut, fs.readFileSync(LLAMA2C_BIN).subarray(0, 5000));
  await assert.rejects(
    importLlama2c(cut, LLAMA2C_TOKENIZER),
    (e: Error) => e instanceof ModelLoadError && e.message.includes('cut.bin: truncated'),
  );
  await assert.rejects(
    importLlama2c(LLAMA2C_BIN, path.join(dir, 'tok.bin')),
    (e: Error) => e instanceof ModelLoadError && e.message.includes('tok.bin: file not found'),
  );
});

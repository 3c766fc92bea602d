// GGUF import: block decoding of every supported type against blocks built from
// known parameters, a K-quant model of width 256 read exactly, stories260K's
// config and tokenizer from a GGUF equal to the Hugging Face folder's, and the
// one-line errors for broken files.

import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { test } from 'node:test';
import { ModelLoadError } from '../../src/model/errors';
import { dequantize } from '../../src/model/ggml';
import { importGguf } from '../../src/model/gguf';
import { loadModel } from '../../src/model/load';
import type { BaseModel } from '../../src/model/types';
import { Rng } from '../../src/util/random';
import { f32ToF16, quantizeQ4_0, quantizeQ8_0, str, writeGguf, writeStoriesGguf } from './gguf_writer';
import { K_BLOCKS, kQuantModel } from './kquants';
import { STORIES, tempDir } from './paths';

const dir = tempDir();
const half = (x: number) => {
  const b = new Uint8Array(2);
  new DataView(b.buffer).setUint16(0, f32ToF16(x), true);
  return b;
};

test('Q8_0, Q4_0 and Q4_1 blocks decode to d·q (+ m)', () => {
  const q8 = new Uint8Array(34);
  q8.set(half(0.5), 0);
  for (let j = 0; j < 32; j++) q8[2 + j] = (j - 16) & 0xff; // int8 −16..15
  assert.deepEqual(
    Array.from(dequantize(q8, 'Q8_0')),
    Array.from({ length: 32 }, (_, j) => 0.5 * (j - 16)),
  );

  const q4 = new Uint8Array(18);
  q4.set(half(-2), 0);
  for (let j = 0; j < 16; j++) q4[2 + j] = j | ((15 - j) << 4); // values j, then 15 − j, offset by 8
  const expected4 = [...Array.from({ length: 16 }, (_, j) => -2 * (j - 8)), ...Array.from({ length: 16 }, (_, j) => -2 * (7 - j))];
  assert.deepEqual(Array.from(dequantize(q4, 'Q4_0')), expected4);

  const q41 = new Uint8Array(20);
  q41.set(half(0.25), 0);
  q41.set(half(-1), 2);
  for (let j = 0; j < 16; j++) q41[4 + j] = j | (j << 4);
  const expected41 = Array.from({ length: 32 }, (_, i) => 0.25 * (i % 16) - 1);
  assert.deepEqual(Array.from(dequantize(q41, 'Q4_1')), expected41);
});

test('ggml reference quantizers round-trip within half a step (a whole one where Q4_0 clamps)', () => {
  const rng = new Rng(1);
  const x = Float32Array.from({ length: 256 }, () => rng.normal());
  // Q4_0 maps the largest magnitude to −8·d, so the other side reaches only 7·d: up to one step off.
  for (const [type, bytes, levels, steps] of [
    ['Q8_0', quantizeQ8_0(x), 127, 0.5],
    ['Q4_0', quantizeQ4_0(x), 8, 1],
  ] as const) {
    const y = dequantize(bytes, type);
    for (let b = 0; b < 8; b++) {
      const block = x.subarray(b * 32, b * 32 + 32);
      const step = Math.max(...block.map(Math.abs)) / levels;
      // Plus the f16 rounding of the scale (2^-11 relative) times the largest level.
      const bound = step * (steps + levels * 2 ** -11) * (1 + 1e-6);
      for (let j = 0; j < 32; j++) assert.ok(Math.abs(y[b * 32 + j] - block[j]) <= bound, `${type} block ${b} value ${j}`);
    }
  }
});

test('Q4_K, Q5_K and Q6_K blocks decode exactly to d·sc·q − dmin·m of the packed parameters', () => {
  const rng = new Rng(7);
  for (const [type, make] of Object.entries(K_BLOCKS)) {
    const blocks = [make(rng), make(rng), make(rng)];
    const bytes = new Uint8Array(blocks.reduce((a, b) => a + b.bytes.length, 0));
    blocks.reduce((at, b) => (bytes.set(b.bytes, at), at + b.bytes.length), 0);
    assert.deepEqual(
      Array.from(dequantize(bytes, type as keyof typeof K_BLOCKS)),
      blocks.flatMap((b) => b.values),
      type,
    );
  }
});

test('a K-quant model of width 256 reads each tensor exactly as the blocks written', async () => {
  const file = path.join(dir, 'kquant.gguf');
  const expected = kQuantModel(file);
  const model = await importGguf(file);
  assert.equal(model.config.hiddenSize, 256);
  assert.equal(model.config.headDim, 64);
  assert.equal(model.config.tieWordEmbeddings, false);
  const names: Record<string, string> = {
    'token_embd.weight': 'model.embed_tokens.weight',
    'blk.0.attn_q.weight': 'model.layers.0.self_attn.q_proj.weight',
    'blk.0.attn_k.weight': 'model.layers.0.self_attn.k_proj.weight',
    'blk.0.attn_v.weight': 'model.layers.0.self_attn.v_proj.weight',
    'blk.0.attn_output.weight': 'model.layers.0.self_attn.o_proj.weight',
    'blk.0.ffn_gate.weight': 'model.layers.0.mlp.gate_proj.weight',
    'blk.0.ffn_up.weight': 'model.layers.0.mlp.up_proj.weight',
    'blk.0.ffn_down.weight': 'model.layers.0.mlp.down_proj.weight',
    'output.weight': 'lm_head.weight',
  };
  for (const [gg, hf] of Object.entries(names)) {
    assert.deepEqual(Array.from(model.weights.f32(hf)), expected.get(gg), gg);
  }
  assert.deepEqual(model.weights.tensors.get('model.layers.0.mlp.down_proj.weight')!.shape, [256, 512]);
  assert.equal(model.weights.tensors.get('model.layers.0.mlp.down_proj.weight')!.dtype, 'Q6_K');
});

let hf: BaseModel;
let fromGguf: BaseModel;

test.before(async () => {
  hf = await loadModel(STORIES);
  const file = path.join(dir, 'stories260K.gguf');
  await writeStoriesGguf(file, 'F16');
  fromGguf = await importGguf(file);
});

test('stories260K from a GGUF has the folder config (interleaved rotary rows), fingerprint and generation ids', () => {
  assert.deepEqual({ ...fromGguf.config, ropeLayout: 'half' }, hf.config);
  assert.equal(fromGguf.config.ropeLayout, 'interleaved');
  assert.equal(fromGguf.name, 'stories260K');
  assert.deepEqual(fromGguf.generation, { bosTokenId: 1, eosTokenIds: [2] });
  assert.equal(fromGguf.weights.tensors.get('model.embed_tokens.weight')!.dtype, 'F16');
  assert.equal(fromGguf.weights.tensors.get('model.layers.0.input_layernorm.weight')!.dtype, 'F32');
});

const TEXTS = [
  'Once upon a time, there was a little girl named Lily.',
  'function add(a, b) {\n\treturn a + b; // sum\n}\n',
  'def f(x):\n    if x > 0:\n        return [i**2 for i in range(x)]\n',
  'Emoji: 🙂👍🏽🚀 and flags 🇫🇷🇯🇵',
  '日本語のテキストと中文文本，还有한국어 문장.',
  'Ελληνικά, русский текст, العربية, עברית, हिन्दी',
  '   leading spaces,  two  spaces,\t\ttabs,\n\n\nnewlines   ',
  'Ünïcödé çàfé naïve résumé — “quotes” … ½ ² ∑',
  '<s> literal specials </s> <unk> in text',
  '',
];

test('the tokenizer built from tokenizer.ggml.* encodes and decodes like tokenizer.json', () => {
  for (const text of TEXTS) {
    const ids = hf.tokenizer.encode(text);
    assert.deepEqual(fromGguf.tokenizer.encode(text), ids, JSON.stringify(text));
    assert.deepEqual(fromGguf.tokenizer.encode(text, { addSpecialTokens: false }), hf.tokenizer.encode(text, { addSpecialTokens: false }));
    for (const skipSpecialTokens of [true, false]) {
      assert.equal(
        fromGguf.tokenizer.decode(ids, { skipSpecialTokens }),
        hf.tokenizer.decode(ids, { skipSpecialTokens }),
        JSON.stringify(text),
      );
    }
  }
  assert.equal(fromGguf.tokenizer.vocabSize, hf.tokenizer.vocabSize);
});

test('tokenizer.chat_template renders with the GGUF special tokens', () => {
  const messages = [
    { role: 'user' as const, content: 'Tell me a story.' },
    { role: 'assistant' as const, content: 'Once upon a time.' },
    { role: 'user' as const, content: 'Another!' },
  ];
  assert.equal(
    fromGguf.tokenizer.applyChatTemplate(messages),
    '<s>[INST] Tell me a story. [/INST]Once upon a time.</s>[INST] Another! [/INST]',
  );
  assert.equal(hf.tokenizer.applyChatTemplate(messages), null);
});

async function rejects(file: string, pattern: RegExp): Promise<void> {
  await assert.rejects(importGguf(file), (e: Error) => {
    assert.ok(e instanceof ModelLoadError, `${e.name}: ${e.message}`);
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes('\n'), 'one line');
    assert.ok(e.message.includes(path.basename(file)), 'names the file');
    return true;
  });
}

test('broken GGUF files fail with one line naming the file and the problem', async () => {
  const good = path.join(dir, 'good.gguf');
  await writeStoriesGguf(good, 'F32');
  const bytes = fs.readFileSync(good);

  const cut = path.join(dir, 'cut.gguf');
  fs.writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length * 0.9)));
  await rejects(cut, /truncated: tensor "[\w.]+" ends at byte \d+ but the file has \d+/);

  const headerCut = path.join(dir, 'header-cut.gguf');
  fs.writeFileSync(headerCut, bytes.subarray(0, 2000));
  await rejects(headerCut, /truncated|not a readable GGUF/);

  const notGguf = path.join(dir, 'not.gguf');
  fs.writeFileSync(notGguf, 'hello, this is text');
  await rejects(notGguf, /not a readable GGUF file \(.*magic/);

  await rejects(path.join(dir, 'missing.gguf'), /missing\.gguf: file not found/);

  const gemma = path.join(dir, 'gemma.gguf');
  await writeStoriesGguf(gemma, 'F32', { extraMeta: { 'general.architecture': str('gemma2') } });
  await rejects(gemma, /unsupported architecture "gemma2"; supported: llama, mistral, qwen2/);

  const q2k = path.join(dir, 'q2k.gguf');
  writeGguf(q2k, { 'general.architecture': str('llama') }, [
    { name: 'token_embd.weight', type: 10, shape: [512, 256], data: new Uint8Array(512 * 84) },
  ]);
  await rejects(q2k, /tensor "token_embd.weight" has tensor type Q2_K, not supported; supported: F32, F16, Q4_0/);

  const noTokens = path.join(dir, 'no-tokens.gguf');
  await writeStoriesGguf(noTokens, 'F32', { extraMeta: { 'tokenizer.ggml.model': str('bert') } });
  await rejects(noTokens, /unsupported tokenizer.ggml.model "bert"/);
});

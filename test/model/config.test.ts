import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { parseConfig } from '../../src/model/config';
import { ModelLoadError } from '../../src/model/errors';
import { STORIES } from './paths';

const stories = () => JSON.parse(fs.readFileSync(path.join(STORIES, 'config.json'), 'utf8')) as Record<string, unknown>;

function rejects(json: unknown, ...parts: string[]): void {
  assert.throws(
    () => parseConfig(json, 'config.json'),
    (err: Error) => {
      assert.ok(err instanceof ModelLoadError, `not a ModelLoadError: ${err}`);
      for (const part of parts) assert.ok(err.message.includes(part), `"${err.message}" does not mention ${part}`);
      return true;
    },
  );
}

test('parses the stories260K config', () => {
  assert.deepEqual(parseConfig(stories(), 'config.json'), {
    family: 'llama',
    architecture: 'LlamaForCausalLM',
    hiddenSize: 64,
    intermediateSize: 172,
    numLayers: 5,
    numHeads: 8,
    numKvHeads: 4,
    headDim: 8,
    vocabSize: 512,
    maxPositions: 512,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    ropeScaling: null,
    ropeLayout: 'half',
    attentionBias: false,
    tieWordEmbeddings: true,
  });
});

test('defaults head_dim and num_key_value_heads', () => {
  const c = { ...stories(), head_dim: undefined, num_key_value_heads: undefined };
  const parsed = parseConfig(c, 'config.json');
  assert.equal(parsed.headDim, 8);
  assert.equal(parsed.numKvHeads, 8);
});

test('Qwen2 has q/k/v biases; Mistral with a sliding window is accepted', () => {
  const qwen = parseConfig({ ...stories(), architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2' }, 'config.json');
  assert.equal(qwen.family, 'qwen2');
  assert.equal(qwen.attentionBias, true);
  const mistral = parseConfig(
    { ...stories(), architectures: ['MistralForCausalLM'], model_type: 'mistral', sliding_window: 4096 },
    'config.json',
  );
  assert.equal(mistral.family, 'mistral');
  assert.equal(mistral.attentionBias, false);
});

test('reads llama3 rope scaling under rope_type or type', () => {
  const scaling = { factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
  const expected = { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 };
  assert.deepEqual(parseConfig({ ...stories(), rope_scaling: { rope_type: 'llama3', ...scaling } }, 'c').ropeScaling, expected);
  assert.deepEqual(parseConfig({ ...stories(), rope_scaling: { type: 'llama3', ...scaling } }, 'c').ropeScaling, expected);
});

test('rejects an unsupported architecture naming file, field and value', () => {
  rejects(
    { ...stories(), architectures: ['GPT2LMHeadModel'], model_type: 'gpt2' },
    'config.json: unsupported architecture "GPT2LMHeadModel" (field "architectures"); supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM',
  );
});

test('rejects unsupported rope_scaling, activation, MLP bias and GQA mismatch', () => {
  rejects({ ...stories(), rope_scaling: { type: 'yarn', factor: 4 } }, 'config.json', 'rope_scaling', '"yarn"');
  rejects({ ...stories(), rope_scaling: { rope_type: 'llama3', factor: 8 } }, 'config.json', 'rope_scaling.low_freq_factor');
  rejects({ ...stories(), hidden_act: 'gelu' }, 'config.json', 'hidden_act', '"gelu"');
  rejects({ ...stories(), mlp_bias: true }, 'config.json', 'mlp_bias');
  rejects({ ...stories(), attention_bias: true }, 'config.json', 'attention_bias');
  rejects({ ...stories(), num_key_value_heads: 3 }, 'config.json', 'num_key_value_heads (3)');
  rejects({ ...stories(), hidden_size: 'big' }, 'config.json', '"hidden_size"');
  rejects({ ...stories(), model_type: 'mistral' }, 'config.json', 'model_type');
});

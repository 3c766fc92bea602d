// GGUF files written from stories260K run on the engine like the Hugging Face
// folder: the golden greedy text exactly at F32, and the mean NLL of the stories-style
// validation texts per type: llama.cpp's own figure on the same file, the engine adding
// nothing on the blocks to their decoded values, and each format's cost within its bound.

import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { test } from 'node:test';
import { Engine } from '../../src/engine/engine';
import { generate } from '../../src/generate/generate';
import { importGguf } from '../../src/model/gguf';
import { loadModel } from '../../src/model/load';
import type { BaseModel } from '../../src/model/types';
import { writeModelGguf, writeStoriesGguf, type StoriesType } from '../model/gguf_writer';
import { golden, SHARED, tempDir } from '../model/paths';
import { meanNll, validationIds } from '../model/validation';
import type { Quantization } from '../../src/engine/quantize';
import { inverseFrequencies } from '../../src/engine/rope';
import { qkvBiases, variant } from './variants';

const dir = tempDir();

async function stories(type: StoriesType, version: 2 | 3 = 3): Promise<BaseModel> {
  const file = path.join(dir, `stories260K-${type}-v${version}.gguf`);
  if (!fs.existsSync(file)) await writeStoriesGguf(file, type, { version });
  return importGguf(file);
}

for (const version of [2, 3] as const) {
  test(`golden greedy output from an F32 GGUF (v${version})`, async () => {
    const model = await stories('F32', version);
    const engine = await Engine.create(model, { cacheDir: path.join(dir, 'cache') });
    try {
      for (const g of golden().prompts) {
        assert.deepEqual(model.tokenizer.encode(g.prompt), g.prompt_ids);
        const out = await generate(engine, g.prompt_ids, null, { maxNewTokens: 200, temperature: 0, stopAtEos: false });
        assert.deepEqual(out.ids, g.generated_ids, `greedy ids for "${g.prompt}"`);
        assert.equal(model.tokenizer.decode([...g.prompt_ids, ...out.ids], { skipSpecialTokens: true }), g.text);
      }
    } finally {
      await engine.dispose();
    }
  });
}

async function nll(model: BaseModel, quantization: Quantization): Promise<number> {
  const engine = await Engine.create(model, { cacheDir: path.join(dir, 'cache'), quantization });
  return meanNll(engine, validationIds(model.tokenizer)).finally(() => engine.dispose());
}

/**
 * llama.cpp's mean NLL of the same token ids on the same files (`npm run bench:gguf`: node-llama-cpp
 * 3.21.1's CPU build, the softmax of its logits at every position). A golden figure of the reference
 * implementation, as golden_greedy.json is: it moves only when the writer or the texts do.
 */
const LLAMA_CPP: Record<StoriesType, number> = { F32: 1.0053, F16: 1.00529, Q8_0: 1.00671, Q4_0: 1.08056, Q4_1: 1.06662 };

test('validation NLL per GGUF type: what llama.cpp computes on the file, within the quantization bounds', async (t) => {
  const reference = await nll(await loadModel(path.join(SHARED, 'models', 'stories260K')), 'f32');
  const pct = (x: number) => `${((100 * (x - reference)) / reference).toFixed(2)} %`;
  for (const type of Object.keys(LLAMA_CPP) as StoriesType[]) {
    const model = await stories(type);
    const quantized = type.startsWith('Q');
    const served = await nll(model, quantized ? 'stored' : 'f32');
    // The file's blocks decoded by ggml's reference decoding (src/model/ggml.ts), run in float32.
    const decoded = quantized ? await nll(model, 'f32') : served;
    t.diagnostic(
      `${type}: NLL ${served.toFixed(5)} (${pct(served)}), decoded ${decoded.toFixed(5)} (${pct(decoded)}), llama.cpp ${LLAMA_CPP[type]}`,
    );
    // The engine computes what llama.cpp computes on the same file: both round activations to int8 for
    // quantized blocks (MatMulNBits' accuracy_level 4, ggml's q8 dot products), float sums differ in order.
    const gap = Math.abs(served - LLAMA_CPP[type]) / LLAMA_CPP[type];
    assert.ok(gap <= 1e-3, `${type}: NLL ${served} vs llama.cpp's ${LLAMA_CPP[type]}`);
    // On the blocks as stored, the engine adds nothing to the format's cost beyond the int8 activations.
    if (quantized) assert.ok(Math.abs(served - decoded) <= 2e-3 * decoded, `${type}: NLL ${served} on its blocks vs ${decoded} decoded`);
    // The format's own cost against the Hugging Face folder. F32 is the same function, F16 rounds each
    // weight by 2^-11 relative, Q8_0 is q8's format (blocks of 32, scale max|w|/127; f16 scales) and
    // stays inside q8's 1 % (test/engine/quantized.test.ts). Q4_0 and Q4_1 store every matrix but the
    // head (Q8_0) and ffn_down (F16: 172 columns) at 4 bits, v_proj included, which q4 keeps at 8: on
    // this d = 64 model that costs +7.5 % and +6.1 %, above q4's 5 %, in llama.cpp as here; the bound is
    // llama.cpp's figure above, not q4's.
    const bound = { F32: 1e-4, F16: 2e-3, Q8_0: 5e-3 }[type as string];
    if (bound !== undefined) assert.ok(Math.abs(served - reference) <= bound, `${type}: NLL ${served} vs ${reference} (bound ${bound})`);
  }
});

const IDS = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315];

/** The largest difference between the logits of the same ids on two models. */
async function logitsDiff(a: BaseModel, b: BaseModel): Promise<number> {
  const cacheDir = path.join(dir, 'cache');
  const [ea, eb] = await Promise.all([Engine.create(a, { cacheDir }), Engine.create(b, { cacheDir })]);
  try {
    const [[la], [lb]] = await Promise.all([ea.logits([IDS], [null]), eb.logits([IDS], [null])]);
    return Math.max(...la.map((x, i) => Math.abs(x - lb[i])));
  } finally {
    await Promise.all([ea.dispose(), eb.dispose()]);
  }
}

test('a qwen2 GGUF (q/k/v biases, rotate-half rows) computes what its Hugging Face folder computes', async () => {
  const folder = await variant({ architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2' }, qkvBiases(0.5));
  const file = path.join(dir, 'qwen2.gguf');
  writeModelGguf(file, folder, 'F32', { arch: 'qwen2' });
  const model = await importGguf(file);
  assert.equal(model.config.family, 'qwen2');
  assert.equal(model.config.ropeLayout, 'half');
  assert.ok((await logitsDiff(model, folder)) < 1e-4);
});

test("llama.cpp's rope_freqs factors reproduce Llama 3 rope scaling", async () => {
  const scaling = { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 };
  const folder = await variant({ rope_scaling: scaling });
  // convert_hf_to_gguf.py's LlamaModel.generate_extra_tensors: one factor per frequency.
  const plain = inverseFrequencies({ ...folder.config, ropeScaling: null });
  const factors = Array.from(plain, (f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < 16 / 4) return 1;
    if (wavelen > 16 / 1) return 8;
    const smooth = (16 / wavelen - 1) / (4 - 1);
    return 1 / ((1 - smooth) / 8 + smooth);
  });
  const file = path.join(dir, 'llama3.gguf');
  writeModelGguf(file, folder, 'F32', {
    extraTensors: [
      { name: 'rope_freqs.weight', type: 0, shape: [factors.length], data: new Uint8Array(Float32Array.from(factors).buffer) },
    ],
  });
  const model = await importGguf(file);
  assert.deepEqual(model.config.ropeScaling, { type: 'factors', factors: Array.from(Float32Array.from(factors)) });
  const ours = inverseFrequencies(model.config);
  inverseFrequencies(folder.config).forEach((f, i) => assert.ok(Math.abs(ours[i] - f) <= 1e-7 * f, `frequency ${i}`));
  assert.ok((await logitsDiff(model, folder)) < 1e-4);
});

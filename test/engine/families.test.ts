// The other model families and rotary settings on the engine, checked for
// internal consistency: Qwen2's q/k/v biases (zero biases equal Llama; real
// ones change the output and shift the prefix keys/values by exactly b), llama3
// rope scaling, and KV-cache decoding equal to a full forward pass for each.

import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { newAdapter } from '../../src/adapter/new';
import { Engine } from '../../src/engine/engine';
import type { AdapterWeights } from '../../src/adapter/types';
import { loadModel } from '../../src/model/load';
import { STORIES } from '../model/paths';
import { qkvBiases, variant } from './variants';

const IDS = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315];

async function lastLogits(engine: Engine, adapter: AdapterWeights | null): Promise<Float32Array> {
  return (await engine.logits([IDS], [adapter], { lastOnly: true }))[0];
}

/** Logits of the last token through prefill + one decode step equal the full pass. */
async function assertCacheConsistent(engine: Engine, adapter: AdapterWeights | null): Promise<void> {
  const full = (await engine.logits([IDS], [adapter]))[0];
  const { state } = await engine.prefill([IDS.slice(0, -1)], [adapter]);
  const [step] = await engine.decode(state, [IDS[IDS.length - 1]]);
  const V = engine.model.config.vocabSize;
  const expected = full.subarray((IDS.length - 1) * V);
  assert.ok(Math.max(...step.map((x, i) => Math.abs(x - expected[i]))) < 1e-4);
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  return Math.max(...a.map((x, i) => Math.abs(x - b[i])));
}

test('Qwen2: zero q/k/v biases equal Llama; real biases change the output and the prefix branch', async () => {
  const qwen = { architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2' };
  const llama = await Engine.create(await loadModel(STORIES));
  const zero = await Engine.create(await variant(qwen, qkvBiases(0)));
  const biased = await Engine.create(await variant(qwen, qkvBiases(0.5)));
  assert.equal(zero.model.config.attentionBias, true);
  const adapter = newAdapter(llama.model.config, 3, 2, 9);
  adapter.gates.fill(1);
  assert.ok(maxDiff(await lastLogits(zero, adapter), await lastLogits(llama, adapter)) < 1e-5);
  assert.ok(maxDiff(await lastLogits(biased, null), await lastLogits(llama, null)) > 1e-2);
  // SPEC §2: K_p = P W_kᵀ + b_k and V_p = P W_vᵀ + b_v, so the biases shift every prefix key/value by exactly b.
  const [withBias, without] = await Promise.all([biased.prefixKV(adapter), zero.prefixKV(adapter)]);
  const { numLayers: L, numKvHeads: G, headDim: dh } = llama.model.config;
  for (const [kind, proj] of [
    ['keys', 'k_proj'],
    ['values', 'v_proj'],
  ] as const) {
    for (let l = 0; l < L; l++) {
      const bias = biased.model.weights.f32(`model.layers.${l}.self_attn.${proj}.bias`);
      for (let g = 0; g < G; g++) {
        for (let n = 0; n < adapter.tokens; n++) {
          for (let j = 0; j < dh; j++) {
            const at = ((l * G + g) * adapter.tokens + n) * dh + j;
            assert.ok(Math.abs(withBias[kind][at] - without[kind][at] - bias[g * dh + j]) < 1e-5, `${kind} layer ${l}`);
          }
        }
      }
    }
  }
  await assertCacheConsistent(biased, adapter);
  await Promise.all([llama, zero, biased].map((e) => e.dispose()));
});

test('llama3 rope scaling changes long-wavelength frequencies and stays cache-consistent', async () => {
  const scaled = await variant({
    rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 },
  });
  const engine = await Engine.create(scaled);
  const llama = await Engine.create(await loadModel(STORIES));
  assert.ok(maxDiff(await lastLogits(engine, null), await lastLogits(llama, null)) > 1e-3);
  const adapter = newAdapter(scaled.config, 2, 1, 4);
  adapter.gates.fill(0.5);
  await assertCacheConsistent(engine, adapter);
  await Promise.all([engine.dispose(), llama.dispose()]);
});

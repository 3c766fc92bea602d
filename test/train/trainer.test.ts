// The training loop on the real model: the NaN/Inf guard, cancellation, and
// per-epoch validation.

import * as assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { newAdapter } from '../../src/adapter/new';
import { chosenRows, makeBatches, makePairBatches } from '../../src/data/batches';
import { toExamples, toPreferencePairs } from '../../src/data/examples';
import type { AdapterWeights } from '../../src/adapter/types';
import type { RecordSet } from '../../src/data/records';
import { Engine } from '../../src/engine/engine';
import { loadModel } from '../../src/model/load';
import { endTokenId } from '../../src/train/endtoken';
import { train, TrainProgress } from '../../src/train/trainer';
import { STORIES } from '../model/paths';

let engine: Engine;
const stories: RecordSet = {
  form: 'text',
  file: 'inline',
  records: Array.from({ length: 24 }, (_, i) => ({
    text: `Once upon a time, there was a cat number ${i}. It liked to play! It was happy!`,
  })),
};

before(async () => {
  engine = await Engine.create(await loadModel(STORIES));
});
after(() => engine.dispose());

test('a non-finite loss stops training cleanly and keeps the last good adapter', async () => {
  const init = newAdapter(engine.model.config, 2, 2, 0);
  init.prefix.fill(3e38); // overflows the prefix keys to ±Inf: every loss is NaN
  init.gates.fill(1);
  const { adapter, summary } = await train(engine, stories, { init, steps: 3, batchSize: 4 });
  assert.match(summary.stoppedEarly ?? '', /non-finite loss or gradient at step 1; kept the adapter from step 0/);
  assert.equal(summary.steps, 0);
  assert.deepEqual(adapter.prefix, init.prefix);
  assert.deepEqual(adapter.gates, init.gates);
});

test('validation loss is reported at the end of every epoch', async () => {
  const reports: TrainProgress[] = [];
  const { summary } = await train(
    engine,
    stories,
    { tokens: 2, epochs: 2, batchSize: 4, valSplit: 0.25 },
    { onProgress: (p) => reports.push(p) },
  );
  const withVal = reports.filter((p) => p.valLoss !== undefined);
  assert.equal(summary.trainExamples, 18);
  assert.equal(summary.valExamples, 6);
  assert.deepEqual(
    withVal.map((p) => p.step),
    [5, 10],
  );
  assert.equal(summary.steps, 10);
  assert.ok(summary.valLoss! < summary.initialValLoss!, `${summary.valLoss} < ${summary.initialValLoss}`);
});

test('cancelling stops before the next step', async () => {
  const controller = new AbortController();
  await assert.rejects(
    train(
      engine,
      stories,
      { tokens: 1, steps: 50, batchSize: 2 },
      { signal: controller.signal, onProgress: (p) => p.step === 2 && controller.abort() },
    ),
    { name: 'AbortError', message: 'training cancelled' },
  );
});

test('end token: stories260K ends its stories with BOS (id 1), not the eos 2 of its generation_config', async () => {
  assert.deepEqual(engine.model.generation.eosTokenIds, [2]);
  const texts = stories.records.map((r) => (r as { text: string }).text);
  assert.equal(await endTokenId(engine, texts), 1);
  // One stop id needs no probe.
  const single = { ...engine, model: { ...engine.model, generation: { bosTokenId: null, eosTokenIds: [2] } } } as unknown as Engine;
  assert.equal(await endTokenId(single, texts), 2);
});

/** Four preference pairs that differ only in "!" against ".", for the one-step DPO gradient tests. */
const dogPairs: Extract<RecordSet, { form: 'preference' }> = {
  form: 'preference',
  file: 'inline',
  records: Array.from({ length: 4 }, (_, i) => ({
    prompt: 'Once upon a time',
    chosen: `, there was a dog number ${i}! It ran!`,
    rejected: `, there was a dog number ${i}. It ran.`,
  })),
};

/** One plain Adam step of DPO from and against `init` over all of dogPairs, nothing else in the way. */
function oneDpoStep(init: AdapterWeights) {
  return {
    init,
    reference: init,
    steps: 1,
    batchSize: 4,
    valSplit: 0,
    shuffle: false,
    warmup: 0,
    schedule: 'constant' as const,
    clip: 0,
    weightDecay: 0,
    lr: 1e-3,
  };
}

/** dogPairs as the one batch a one-step DPO run trains on. */
function dogBatch() {
  return makePairBatches(toPreferencePairs(dogPairs.records, engine.model.tokenizer, { maxLen: 512, endId: 1 }).items, {
    batchSize: 4,
    seed: 0,
    shuffle: false,
    padId: 0,
  })[0];
}

/**
 * Checks that one Adam step from `init` moved each gate against DPO's gradient plus `weight` × `extra`
 * (Adam's first step moves each parameter by lr·g/(|g| + eps): its sign is −sign(g)); returns how many
 * gates that extra term turned around, so that a test can tell it from plain DPO.
 */
async function gatesMovedAgainst(adapter: AdapterWeights, init: AdapterWeights, extra: Float32Array, weight: number): Promise<number> {
  const batch = dogBatch();
  const dpo = await engine.dpoStep(batch, init, await engine.sequenceLogps(batch, init), 0.1);
  let flipped = 0;
  dpo.gradGates.forEach((g, i) => {
    const want = g + weight * extra[i];
    if (Math.abs(want) < 1e-6) return;
    const moved = adapter.gates[i] - init.gates[i];
    assert.equal(Math.sign(moved), -Math.sign(want), `gate ${i}: moved ${moved}, gradient ${want}`);
    if (Math.sign(want) !== Math.sign(g)) flipped++;
  });
  return flipped;
}

test('--rpo-alpha adds alpha × the chosen answers’ SFT gradient to the DPO gradient', async () => {
  const init = newAdapter(engine.model.config, 2, 2, 0);
  init.gates.fill(0.5);
  const alpha = 5;
  const { adapter } = await train(engine, dogPairs, { ...oneDpoStep(init), rpoAlpha: alpha });
  // The same gradients by hand.
  const batch = dogBatch();
  const sft = await engine.sftStep(chosenRows(batch), init);
  const flipped = await gatesMovedAgainst(adapter, init, sft.gradGates, alpha);
  assert.ok(flipped > 0, 'alpha changed no gate’s direction: the test cannot tell RPO from DPO');
});

test('an anchor adds its weight × the NLL gradient of the reference’s own answers to the DPO gradient', async () => {
  const anchor = Array.from({ length: 8 }, (_, i) => ({
    prompt: 'Once upon a time',
    completion: `, there was a cat. It sat on mat ${i}.`,
  }));
  const init = newAdapter(engine.model.config, 2, 2, 0);
  init.gates.fill(0.5);
  const weight = 50;
  const oneStep = oneDpoStep(init);
  const { adapter } = await train(engine, dogPairs, { ...oneStep, anchor, anchorWeight: weight });
  const { adapter: zero } = await train(engine, dogPairs, { ...oneStep, anchor, anchorWeight: 0 });
  const { adapter: plain } = await train(engine, dogPairs, oneStep);
  assert.deepEqual(zero.gates, plain.gates, 'weight 0 is plain DPO');
  // By hand: one DPO batch of the 4 pairs, one anchor batch of all 8 answers (one step per epoch).
  const anchorBatch = makeBatches(toExamples(anchor, 'prompt-completion', engine.model.tokenizer, { maxLen: 512, endId: null }).items, {
    batchSize: 8,
    seed: 0,
    shuffle: false,
    padId: 0,
  })[0];
  const sft = await engine.sftStep(anchorBatch, init);
  const flipped = await gatesMovedAgainst(adapter, init, sft.gradGates, weight);
  assert.ok(flipped > 0, 'the anchor changed no gate’s direction: the test cannot tell it from plain DPO');
});

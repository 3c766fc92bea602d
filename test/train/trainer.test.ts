// The training loop on the real model: the NaN/Inf guard, cancellation, and
// per-epoch validation.

import * as assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { newAdapter } from '../../src/adapter/new';
import { chosenRows, makeBatches, makePairBatches, type TokenBatch } from '../../src/data/batches';
import { toExamples, toPreferencePairs } from '../../src/data/examples';
import type { AdapterWeights } from '../../src/adapter/types';
import type { RecordSet } from '../../src/data/records';
import { Engine } from '../../src/engine/engine';
import { loadModel } from '../../src/model/load';
import { endTokenId } from '../../src/train/endtoken';
import { correctionStep, editedPositions, type CorrectionTerms, type ReferenceTops } from '../../src/train/corrections';
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

test('a correction’s edited tokens are the chosen answer’s tokens outside its common subsequence with the rejected one', () => {
  const pairs = toPreferencePairs(
    [
      ...dogPairs.records.slice(0, 1),
      { prompt: 'Once upon a time', chosen: ', there was a big dog. It ran!', rejected: ', there was a dog. It ran.' },
    ],
    engine.model.tokenizer,
    { maxLen: 512, endId: 1 },
  ).items;
  const batch = makePairBatches(pairs, { batchSize: 2, seed: 0, shuffle: false, padId: 0 })[0];
  const edited = editedPositions(batch).map((p) => [Math.floor(p / batch.length), engine.model.tokenizer.decode([batch.targets[p]])]);
  assert.deepEqual(edited, [
    [0, '!'],
    [0, '!'],
    [1, 'big'],
    [1, '!'],
  ]);
});

test('the correction terms’ gradient is the finite-difference gradient of their loss, computed here from log-probabilities', async () => {
  const reference = newAdapter(engine.model.config, 2, 2, 0);
  reference.gates.fill(0.5);
  const adapter = {
    ...reference,
    prefix: reference.prefix.map((x, i) => x + 0.3 * Math.sin(i)),
    gates: reference.gates.map((g, i) => g + 0.1 * Math.cos(i)),
  };
  const batch = dogBatch();
  const anchor = makeBatches(
    toExamples([{ prompt: 'Once upon a time', completion: ', there was a cat. It sat.' }], 'prompt-completion', engine.model.tokenizer, {
      maxLen: 512,
      endId: null,
    }).items,
    { batchSize: 1, seed: 0, shuffle: false, padId: 0 },
  )[0];
  const terms = { edit: 3, keep: 100, top: 8 };
  const tops: ReferenceTops = new Map();
  const step = await summedCorrections(batch, anchor, adapter, reference, terms, tops);
  // A second epoch's step reads the reference's top tokens from `tops` and gives the same.
  const again = await summedCorrections(batch, anchor, adapter, reference, terms, tops);
  assert.deepEqual([again.loss, again.gradGates], [step.loss, step.gradGates]);
  // The loss by hand: the edit weights (1 − p) are taken at `adapter` and held, as the step holds them.
  const edits = editedPositions(batch);
  const chosen = chosenRows(batch);
  const ids = edits.map((p) => chosen.targets[p]);
  const held = (await engine.targetLogps(chosen, { positions: edits, ids }, adapter)).map((lp) => 1 - Math.exp(lp));
  const kl = async (a: AdapterWeights, rows: TokenBatch, skip: Set<number>) => {
    let total = 0;
    let count = 0;
    for (let r = 0; r < rows.rows; r++) {
      const row = Array.from(rows.inputIds.subarray(r * rows.length, (r + 1) * rows.length));
      const [p, q] = await Promise.all([engine.logits([row], [a]), engine.logits([row], [reference])]);
      for (let t = 0; t < rows.length; t++) {
        if (!rows.mask[r * rows.length + t] || skip.has(r * rows.length + t)) continue;
        count++;
        const V = engine.model.config.vocabSize;
        const lq = logSoftmax(q[0].subarray(t * V, (t + 1) * V));
        const lp = logSoftmax(p[0].subarray(t * V, (t + 1) * V));
        const top = [...lq.keys()].sort((x, y) => lq[y] - lq[x]).slice(0, terms.top);
        for (const v of top) total += Math.exp(lq[v]) * (lq[v] - lp[v]);
      }
    }
    return { total, count };
  };
  const loss = async (a: AdapterWeights) => {
    const lp = await engine.targetLogps(chosen, { positions: edits, ids }, a);
    const edit = (terms.edit * held.reduce((sum, w, k) => sum - w * lp[k], 0)) / edits.length;
    const [c, n] = [await kl(a, chosen, new Set(edits)), await kl(a, anchor, new Set())];
    return edit + (terms.keep * (c.total + n.total)) / (c.count + n.count);
  };
  assert.ok(Math.abs((await loss(adapter)) - step.loss) < 1e-3 * Math.abs(step.loss), `loss ${step.loss} vs ${await loss(adapter)}`);
  const h = 1e-2;
  for (const i of [0, 3, 5]) {
    const at = (d: number) => ({ ...adapter, gates: adapter.gates.map((g, j) => (j === i ? g + d : g)) });
    const fd = ((await loss(at(h))) - (await loss(at(-h)))) / (2 * h);
    assert.ok(Math.abs(fd - step.gradGates[i]) < 0.02 * Math.abs(fd) + 1e-3, `gate ${i}: ${step.gradGates[i]} vs finite differences ${fd}`);
  }
});

test('--edit-weight and --anchor add the correction terms’ gradient to the DPO gradient', async () => {
  const init = newAdapter(engine.model.config, 2, 2, 0);
  init.gates.fill(0.5);
  const oneStep = oneDpoStep(init);
  const { adapter } = await train(engine, dogPairs, { ...oneStep, editWeight: 3, anchorWeight: 100 });
  const { adapter: zero } = await train(engine, dogPairs, { ...oneStep, editWeight: 0, anchorWeight: 0 });
  const { adapter: plain } = await train(engine, dogPairs, oneStep);
  assert.deepEqual(zero.gates, plain.gates, 'weights 0 are plain DPO');
  const terms = await summedCorrections(dogBatch(), undefined, init, init, { edit: 3, keep: 100, top: 8 }, new Map());
  const flipped = await gatesMovedAgainst(adapter, init, terms.gradGates, 1);
  assert.ok(flipped > 0, 'the correction terms changed no gate’s direction: the test cannot tell them from plain DPO');
});

/** correctionStep's loss and gate gradient, summed over its steps as the trainer sums them. */
async function summedCorrections(
  batch: TokenBatch,
  anchor: TokenBatch | undefined,
  adapter: AdapterWeights,
  reference: AdapterWeights,
  terms: CorrectionTerms,
  tops: ReferenceTops,
) {
  const { steps, constant } = await correctionStep(engine, batch, anchor, adapter, reference, terms, tops);
  const gradGates = new Float32Array(adapter.gates.length);
  for (const s of steps) s.gradGates.forEach((g, i) => (gradGates[i] += g));
  return { loss: steps.reduce((sum, s) => sum + s.loss, constant), gradGates };
}

function logSoftmax(z: Float32Array): Float64Array {
  const max = Math.max(...z);
  const lse = max + Math.log(z.reduce((s, v) => s + Math.exp(v - max), 0));
  return Float64Array.from(z, (v) => v - lse);
}

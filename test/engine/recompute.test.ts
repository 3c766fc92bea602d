// A recomputed training pass (each layer recomputed from its checkpoint in the
// backward pass, the LM head in chunks of targets) gives the loss, gradients
// and log-probabilities of the one-graph pass, on stories260K (f32 and q4) and
// on a small random model of another shape; its gradient also matches central
// finite differences of its own loss. The one-graph pass's own chunks of targets
// (a Scan) change nothing either.

import * as assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { newAdapter } from '../../src/adapter/new';
import type { AdapterWeights } from '../../src/adapter/types';
import type { onnx } from 'onnx-proto';
import { scoreGraph, trainGraph } from '../../kernels/graphs';
import { Engine, EngineOptions, microBatchRows, recomputes } from '../../src/engine/engine';
import { weightsFile } from '../../src/engine/weights';
import { loadModel } from '../../src/model/load';
import type { BaseModel, ModelConfig } from '../../src/model/types';
import { Rng } from '../../src/util/random';
import { ensureRandomModel, RandomModelSpec } from '../bench/models';
import { STORIES, tempDir } from '../model/paths';
import { fourStories, qwen05bShape } from './training';

/** Not stories260K's shape: three query heads per key/value head, a tied head, d_h 16. */
const RANDOM: RandomModelSpec = {
  name: 'recompute-test',
  hidden: 96,
  layers: 4,
  heads: 6,
  kvHeads: 2,
  ffn: 256,
  vocab: 512,
  tied: true,
  ropeTheta: 10000,
  maxPositions: 256,
  seed: 7,
};

const engines: Engine[] = [];
let stories: BaseModel;
let random: BaseModel;

async function engine(model: BaseModel, opts: EngineOptions): Promise<Engine> {
  const e = await Engine.create(model, { cacheDir, ...opts });
  engines.push(e);
  return e;
}

let cacheDir: string;
before(async () => {
  cacheDir = tempDir();
  stories = await loadModel(STORIES);
  random = await loadModel(ensureRandomModel(RANDOM, STORIES));
});
after(() => Promise.all(engines.map((e) => e.dispose())));

function adapterFor(config: ModelConfig, tokens: number, startLayer: number, seed: number): AdapterWeights {
  const a = newAdapter(config, tokens, startLayer, seed);
  const rng = new Rng(seed);
  // Non-zero gates so that every gradient flows (a new adapter's gates are 0).
  for (let i = 0; i < a.gates.length; i++) a.gates[i] = 0.5 * rng.normal();
  return a;
}

/** Element-wise closeness, measured against the largest entry (float32 rounding differs between the graphs). */
function close(a: ArrayLike<number>, b: ArrayLike<number>, what: string, tol = 1e-4): void {
  assert.equal(a.length, b.length, what);
  let scale = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  for (let i = 0; i < a.length; i++)
    assert.ok(Math.abs(a[i] - b[i]) <= tol * (scale || 1), `${what}[${i}]: ${a[i]} vs ${b[i]} (scale ${scale})`);
}

/** ‖a − b‖ / ‖b‖: for int8-rounded activations, where single entries move by a rounding step. */
function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < b.length; i++) {
    diff += (a[i] - b[i]) ** 2;
    norm += b[i] ** 2;
  }
  return Math.sqrt(diff / norm);
}

/** An SFT and a DPO step of both engines on the same batch and adapter; `compare` checks each output pair. */
async function bothSteps(
  plain: Engine,
  recomputed: Engine,
  model: BaseModel,
  startLayer: number,
  compare: (a: ArrayLike<number>, b: ArrayLike<number>, what: string) => void,
): Promise<void> {
  const batch = fourStories(model);
  const adapter = adapterFor(model.config, 3, startLayer, 11 + startLayer);
  const a = await recomputed.sftStep(batch, adapter);
  const b = await plain.sftStep(batch, adapter);
  assert.equal(a.targets, b.targets);
  const ref = Float32Array.of(-30, -41, -25, -38);
  const c = await recomputed.dpoStep(batch, adapter, ref, 0.1);
  const d = await plain.dpoStep(batch, adapter, ref, 0.1);
  for (const [method, x, y] of [
    ['SFT', a, b],
    ['DPO', c, d],
  ] as const) {
    compare([x.loss], [y.loss], `${method} loss`);
    compare(x.gradPrefix, y.gradPrefix, `${method} grad prefix`);
    compare(x.gradGates, y.gradGates, `${method} grad gates`);
    compare(x.logps, y.logps, `${method} logps`);
  }
}

async function sameSteps(plain: Engine, recomputed: Engine, model: BaseModel, startLayer: number): Promise<void> {
  await bothSteps(plain, recomputed, model, startLayer, (a, b, what) => close(a, b, what));
}

test('stories260K: a recomputed step in chunks of 7 targets equals the one-graph step (start layers 0 and 2)', async () => {
  const plain = await engine(stories, { recompute: 'off' });
  const recomputed = await engine(stories, { recompute: 'on', logitChunk: 7 });
  for (const s of [0, 2]) await sameSteps(plain, recomputed, stories, s);
});

test('the one-graph step and scoring take their targets in chunks: chunks of 7 give the single chunk’s results, no logits outside the Scan', async () => {
  const whole = await engine(stories, { recompute: 'off' });
  const chunked = await engine(stories, { recompute: 'off', logitChunk: 7 });
  // fourStories has targets in every row, a count that is no multiple of 7: the last chunk is padded.
  for (const s of [0, 2]) await sameSteps(whole, chunked, stories, s);
  // The [targets × vocabulary] logits exist only inside the Scan's body, one chunk at a time.
  // So does scoring (validation loss, DPO reference log-probabilities).
  const batch = fourStories(stories);
  close(await chunked.tokenLogps(batch, null), await whole.tokenLogps(batch, null), 'scored log-probs');
  const index = weightsFile(stories, cacheDir).index;
  const head = (n: onnx.INodeProto) => n.opType !== 'Gather' && n.input!.includes('model.embed_tokens.weight');
  for (const graph of [trainGraph(stories.config, index, 0, 'sft', 7), scoreGraph(stories.config, index, 7)]) {
    assert.equal(graph.nodes.filter((n) => n.opType === 'Scan').length, 1);
    assert.ok(!graph.nodes.some((n) => n.opType === 'LogSoftmax' || head(n)), 'no head product nor log-softmax in the main graph');
    const body = graph.nodes.find((n) => n.opType === 'Scan')!.attribute![0].g!;
    assert.ok(body.node!.some((n) => n.opType === 'LogSoftmax') && body.node!.some(head), 'the head in the Scan body');
  }
});

test('stories260K q4: the recomputed step runs the same quantized VJPs', async () => {
  const plain = await engine(stories, { recompute: 'off', quantization: 'q4' });
  const recomputed = await engine(stories, { recompute: 'on', quantization: 'q4', logitChunk: 50 });
  // MatMulNBits at accuracy level 4 rounds its input to int8 per block, so a float32
  // difference in the last bit can move an entry by one step: the one-graph step itself
  // differs by 2 % of the largest DPO prefix gradient between passes of one row and of four.
  await bothSteps(plain, recomputed, stories, 1, (a, b, what) => {
    const error = relativeError(a, b);
    assert.ok(error <= 1e-2, `${what}: relative error ${error}`);
  });
});

test('a random model with grouped heads and a tied head, one row per pass', async () => {
  const plain = await engine(random, { recompute: 'off' });
  const recomputed = await engine(random, { recompute: 'on', logitChunk: 16, microBatch: 1 });
  for (const s of [0, 3]) await sameSteps(plain, recomputed, random, s);
});

test('the recomputed gradient matches central finite differences of the loss', async () => {
  const recomputed = await engine(random, { recompute: 'on', logitChunk: 16 });
  const batch = fourStories(random);
  const adapter = adapterFor(random.config, 2, 1, 5);
  const { gradPrefix, gradGates } = await recomputed.sftStep(batch, adapter);
  // Along a random direction u in (prefix, gates): (L(θ + hu) − L(θ − hu)) / 2h ≈ ∇L·u.
  const rng = new Rng(99);
  const u = { prefix: adapter.prefix.map(() => rng.normal()), gates: adapter.gates.map(() => rng.normal()) };
  let predicted = 0;
  gradPrefix.forEach((g, i) => (predicted += g * u.prefix[i]));
  gradGates.forEach((g, i) => (predicted += g * u.gates[i]));
  const h = 1e-2;
  const lossAt = async (sign: number) => {
    const moved: AdapterWeights = {
      ...adapter,
      prefix: adapter.prefix.map((x, i) => x + sign * h * u.prefix[i]),
      gates: adapter.gates.map((x, i) => x + sign * h * u.gates[i]),
    };
    return (await recomputed.sftStep(batch, moved)).loss;
  };
  const numeric = ((await lossAt(1)) - (await lossAt(-1))) / (2 * h);
  assert.ok(Math.abs(numeric - predicted) <= 2e-2 * Math.abs(predicted), `finite difference ${numeric} vs gradient ${predicted}`);
});

test('recompute: auto for a model too large for two plain rows per pass (Qwen2.5-0.5B at 256 tokens), forced either way', () => {
  const qwen05b = qwen05bShape(stories.config);
  const free = 16 * 2 ** 30;
  assert.equal(recomputes(qwen05b, 256, 'auto', free), true);
  assert.equal(recomputes(qwen05b, 256, 'off', free), false);
  assert.equal(recomputes(stories.config, 256, 'auto', free), false);
  assert.equal(recomputes(stories.config, 256, 'on', free), true);
  // A recomputed pass of qwen05b takes a few 256-token rows, whatever the free memory.
  assert.equal(microBatchRows(qwen05b, 256, free, true), 3);
  assert.equal(microBatchRows(qwen05b, 256, 0, true), 3);
});

test('bad recompute options are refused', async () => {
  await assert.rejects(
    Engine.create(stories, { cacheDir, recompute: 'sometimes' as never }),
    /recompute must be one of on, off, auto, got sometimes/,
  );
  await assert.rejects(Engine.create(stories, { cacheDir, logitChunk: 0 }), /logit chunk must be a whole number of targets ≥ 1, got 0/);
});

// Quality of the quantized base on stories260K (f32 vs q8 vs q4): validation
// NLL, greedy continuations, and an adapter trained through a q4 base.
// stories260K has d = 64 and ffn 172, so the down projection's input width is
// not a multiple of the 32-weight block: the padded last block is exercised too.

import * as assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { makeBatches } from '../../src/data/batches';
import { toExamples } from '../../src/data/examples';
import { readJsonl } from '../../src/data/jsonl';
import type { SftRecord } from '../../src/data/records';
import { Engine } from '../../src/engine/engine';
import type { Quantization } from '../../src/engine/quantize';
import type { TokenBatch } from '../../src/data/batches';
import { generate } from '../../src/generate/generate';
import { loadModel } from '../../src/model/load';
import type { BaseModel } from '../../src/model/types';
import { train } from '../../src/train/trainer';
import { SHARED, STORIES, tempDir } from '../model/paths';

const STYLE = `${SHARED}/datasets/stories-style`;
const engines = new Map<Quantization, Engine>();
let model: BaseModel;

before(async () => {
  model = await loadModel(STORIES);
  // Its own cache folder: the conversions this test makes are its own.
  const cacheDir = tempDir();
  for (const q of ['f32', 'q8', 'q4'] as const) engines.set(q, await Engine.create(model, { quantization: q, cacheDir }));
});
after(() => Promise.all([...engines.values()].map((e) => e.dispose())));

/** Mean per-token negative log-likelihood of a validation file under the base model. */
async function meanNll(engine: Engine, batches: TokenBatch[]): Promise<number> {
  let sum = 0;
  let count = 0;
  for (const b of batches) {
    for (const lp of await engine.tokenLogps(b, null)) sum -= lp;
    count += b.mask.reduce((a, m) => a + m, 0);
  }
  return sum / count;
}

function validationBatches(file: string, examples: number): TokenBatch[] {
  const set = readJsonl(file);
  const records = (set.records as SftRecord[]).slice(0, examples);
  const { items } = toExamples(records, 'text', model.tokenizer, { maxLen: 256 });
  return makeBatches(items, { batchSize: 8, seed: 0, shuffle: false, padId: 0 });
}

test('per-token validation NLL: q8 within 1 % of f32, q4 within 5 %', async (t) => {
  const batches = validationBatches(`${STYLE}/base.val.jsonl`, 64);
  const f32 = await meanNll(engines.get('f32')!, batches);
  for (const [q, tolerance] of [
    ['q8', 0.01],
    ['q4', 0.05],
  ] as const) {
    const nll = await meanNll(engines.get(q)!, batches);
    t.diagnostic(`${q}: NLL ${nll.toFixed(4)} vs f32 ${f32.toFixed(4)} (${((100 * (nll - f32)) / f32).toFixed(2)} %)`);
    assert.ok(Math.abs(nll - f32) <= tolerance * f32, `${q}: NLL ${nll.toFixed(4)} vs f32 ${f32.toFixed(4)}`);
  }
});

test('greedy continuations at q8 match f32 for at least the first 20 tokens', async () => {
  for (const text of ['Once upon a time', 'Lily and Tom went to the park', 'The little dog']) {
    const prompt = model.tokenizer.encode(text);
    const opts = { maxNewTokens: 20, temperature: 0 };
    const f32 = await generate(engines.get('f32')!, prompt, null, opts);
    const q8 = await generate(engines.get('q8')!, prompt, null, opts);
    assert.equal(f32.ids.length, 20, `"${text}": f32 stopped early`);
    assert.deepEqual(q8.ids, f32.ids, `"${text}": q8 "${q8.text}" vs f32 "${f32.text}"`);
  }
});

test('an adapter trained through the q4 base lowers validation loss within 10 % of the f32 improvement', async (t) => {
  const data = readJsonl(`${STYLE}/shout.train.jsonl`);
  const validation = readJsonl(`${STYLE}/shout.val.jsonl`);
  const small = (set: typeof data, n: number) => ({ ...set, records: set.records.slice(0, n) }) as typeof data;
  const opts = { steps: 30, batchSize: 8, tokens: 8, validation: small(validation, 32), seed: 3, lr: 2e-2 };
  const gain = async (q: Quantization) => {
    const { summary } = await train(engines.get(q)!, small(data, 240), opts);
    return summary.initialValLoss! - summary.valLoss!;
  };
  const f32 = await gain('f32');
  const q4 = await gain('q4');
  t.diagnostic(`validation loss gain: f32 ${f32.toFixed(4)}, q4 ${q4.toFixed(4)}`);
  assert.ok(f32 > 0, `f32 training improved validation loss by ${f32}`);
  assert.ok(q4 >= 0.9 * f32, `q4 improvement ${q4.toFixed(4)} vs f32 ${f32.toFixed(4)}`);
});

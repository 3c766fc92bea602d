// Mask/target alignment on real stories-style lines with the real stories260K tokenizer.

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { readJsonl } from '../../src/data/jsonl';
import { toExamples, toPreferencePairs } from '../../src/data/examples';
import { makeBatches, makePairBatches } from '../../src/data/batches';
import type { PromptCompletionRecord, PreferenceRecord } from '../../src/data/records';
import { HfTokenizer } from '../../src/model/tokenizer';

const MODEL = '/work/shared/models/stories260K';
const DATA = '/work/shared/datasets/stories-style';
const missing = !fs.existsSync(path.join(MODEL, 'tokenizer.json')) || !fs.existsSync(DATA);

test('prompt/completion: targets are exactly the completion tokens, shifted by one', { skip: missing }, () => {
  const tok = HfTokenizer.fromFolder(MODEL);
  const set = readJsonl(path.join(DATA, 'zoe.pc.val.jsonl'));
  const records = set.records.slice(0, 20) as PromptCompletionRecord[];
  const { items, truncated, dropped } = toExamples(records, 'prompt-completion', tok, { maxLen: 512 });
  assert.equal(items.length, 20);
  assert.equal(truncated + dropped, 0);
  items.forEach((ex, i) => {
    const { prompt, completion } = records[i];
    // Same tokens as the whole story encoded at once: what the model sees when it generates.
    assert.deepEqual(ex.ids, tok.encode(prompt + completion));
    const start = ex.isTarget.indexOf(1);
    assert.equal(tok.decode(ex.ids.slice(0, start), { skipSpecialTokens: true }), prompt);
    assert.ok(ex.isTarget.subarray(start).every((x) => x === 1));
  });
  const [batch] = makeBatches(items.slice(0, 4), { batchSize: 4, seed: 0, shuffle: false, padId: 0 });
  for (let b = 0; b < batch.rows; b++) {
    const ex = items[b];
    for (let t = 0; t < batch.length; t++) {
      const k = b * batch.length + t;
      const scored = t + 1 < ex.ids.length && ex.isTarget[t + 1] === 1;
      assert.equal(batch.mask[k], scored ? 1 : 0, `row ${b} position ${t}`);
      if (scored) assert.equal(batch.targets[k], ex.ids[t + 1]);
    }
    const scoredIds = ex.ids.filter((_, t) => t > 0 && batch.mask[b * batch.length + t - 1] === 1);
    // The decoder strips the one leading space that SentencePiece's "▁" stands for.
    assert.equal(tok.decode(scoredIds), records[b].completion.replace(/^ /, ''));
  }
});

test('text: every token after BOS is scored', { skip: missing }, () => {
  const tok = HfTokenizer.fromFolder(MODEL);
  const set = readJsonl(path.join(DATA, 'shout.val.jsonl'));
  const { items } = toExamples(set.records.slice(0, 3) as { text: string }[], 'text', tok, { maxLen: 512 });
  const [batch] = makeBatches(items, { batchSize: 3, seed: 0, shuffle: false, padId: 0 });
  items.forEach((ex, b) => {
    assert.equal(ex.ids[0], 1);
    const row = batch.mask.subarray(b * batch.length, (b + 1) * batch.length);
    assert.equal(
      row.reduce((a, x) => a + x, 0),
      ex.ids.length - 1,
    );
  });
});

test('preference pairs from a real dpo file batch as chosen rows then rejected rows', { skip: missing }, () => {
  const tok = HfTokenizer.fromFolder(MODEL);
  const records = readJsonl(path.join(DATA, 'moral.dpo.val.jsonl')).records.slice(0, 2) as PreferenceRecord[];
  const { items } = toPreferencePairs(records, tok, { maxLen: 512 });
  const [batch] = makePairBatches(items, { batchSize: 2, seed: 0, shuffle: false, padId: 0 });
  assert.equal(batch.rows, 4);
  const row = (r: number) =>
    Array.from(batch.inputIds.subarray(r * batch.length, r * batch.length + items[r % 2][r < 2 ? 'chosen' : 'rejected'].ids.length));
  assert.equal(tok.decode(row(0), { skipSpecialTokens: true }), records[0].chosen);
  assert.equal(tok.decode(row(3), { skipSpecialTokens: true }), records[1].rejected);
});

test("a prompt that starts with BOS (a chat template's rendering) is not given a second one", { skip: missing }, () => {
  const tok = HfTokenizer.fromFolder(MODEL);
  const record = { prompt: 'Once upon a time', chosen: ' there was a dog!', rejected: ' there was a dog.' };
  const plain = toPreferencePairs([record], tok, { maxLen: 512 }).items[0];
  const rendered = toPreferencePairs([{ ...record, prompt: `<s>${record.prompt}` }], tok, { maxLen: 512 }).items[0];
  // What generation encodes for each: the text with BOS once.
  assert.deepEqual(plain.chosen.ids, tok.encode(record.prompt + record.chosen));
  assert.deepEqual(rendered.chosen.ids, plain.chosen.ids);
  assert.deepEqual(rendered.rejected.ids, plain.rejected.ids);
  assert.deepEqual(Array.from(rendered.chosen.isTarget), Array.from(plain.chosen.isTarget));
});

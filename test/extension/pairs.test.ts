// The chat panel's feedback as preference pairs (src/extension/pairs.ts): which feedback makes a
// pair and which does not, and the workspace's pairs file (replace per turn, read back, export
// in the form `aligner refine` reads, a corrupt file named with its line).

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { readJsonl } from '../../src/data/jsonl';
import { PairStore, pairsOfTurn, type StoredPair } from '../../src/extension/pairs';
import type { Answer, Turn } from '../../src/extension/webviewMessages';
import { tempDir } from '../model/paths';

const ADAPTER = '/lib/adapters/shout.safetensors';
const answer = (text: string, extra: Partial<Answer> = {}): Answer => ({
  text,
  adapter: ADAPTER,
  finishReason: 'eos',
  prompt: 'Once upon a time',
  fingerprint: 'fp1',
  ...extra,
});
const turn = (answers: Turn['answers'], extra: Partial<Turn> = {}): Turn => ({
  id: 't1',
  prompt: 'Once upon a time',
  time: 0,
  answers,
  ...extra,
});
const NOW = new Date('2026-11-29T04:00:00Z');
const brief = (pairs: StoredPair[]) => pairs.map((p) => [p.kind, p.chosen, p.rejected]);

test('an edit makes a pair: the edited text chosen, the answer as written rejected, with what the model saw as the prompt', () => {
  const pairs = pairsOfTurn(turn({ adapter: answer('there was a dog.', { edited: 'there was a dog!' }) }), NOW);
  assert.deepEqual(pairs, [
    {
      prompt: 'Once upon a time',
      chosen: 'there was a dog!',
      rejected: 'there was a dog.',
      id: 't1/edit-adapter',
      kind: 'edit',
      adapter: 'shout',
      base_fingerprint: 'fp1',
      time: NOW.toISOString(),
    },
  ]);
  // An edit that changes nothing, or empties the answer, is no preference.
  assert.deepEqual(pairsOfTurn(turn({ adapter: answer('a.', { edited: 'a.' }) })), []);
  assert.deepEqual(pairsOfTurn(turn({ adapter: answer('a.', { edited: '  ' }) })), []);
});

test('regenerate and prefer: the preferred answer is chosen, the other rejected', () => {
  const answers = { adapter: answer('one.'), again: answer('two!') };
  assert.deepEqual(brief(pairsOfTurn(turn(answers, { preferred: 'again' }))), [['choice', 'two!', 'one.']]);
  assert.deepEqual(brief(pairsOfTurn(turn(answers, { preferred: 'adapter' }))), [['choice', 'one.', 'two!']]);
  // Both edited and preferred: each edit and the choice are pairs of their own.
  const both = { adapter: answer('one.', { edited: 'one!' }), again: answer('two!') };
  assert.deepEqual(brief(pairsOfTurn(turn(both, { preferred: 'again' }))), [
    ['edit', 'one!', 'one.'],
    ['choice', 'two!', 'one.'],
  ]);
});

test('👍/👎: opposite verdicts on two answers to one prompt make a pair; a lone verdict makes none', () => {
  assert.deepEqual(pairsOfTurn(turn({ adapter: answer('one.', { rating: 'up' }) })), []);
  assert.deepEqual(pairsOfTurn(turn({ adapter: answer('one.', { rating: 'down' }) })), []);
  // 👎, then Regenerate, then 👍 on the new answer.
  const rated = { adapter: answer('one.', { rating: 'down' }), again: answer('two!', { rating: 'up' }) };
  assert.deepEqual(brief(pairsOfTurn(turn(rated))), [['rating', 'two!', 'one.']]);
  // Two 👍 (or two 👎) say nothing about which is better.
  const same = { adapter: answer('one.', { rating: 'up' }), again: answer('two!', { rating: 'up' }) };
  assert.deepEqual(pairsOfTurn(turn(same)), []);
  // An explicit preference wins over the ratings.
  assert.deepEqual(brief(pairsOfTurn(turn(rated, { preferred: 'adapter' }))), [['choice', 'one.', 'two!']]);
});

test('no pair from answers that cannot be compared or were not complete', () => {
  // Stopped (no prompt reported), failed, or empty answers.
  assert.deepEqual(pairsOfTurn(turn({ adapter: answer('a.', { edited: 'a!', prompt: undefined, finishReason: 'cancelled' }) })), []);
  assert.deepEqual(pairsOfTurn(turn({ adapter: answer('a.', { edited: 'a!', error: 'boom' }) })), []);
  // Two answers to different prompts, from different adapters, or on different base models.
  const differ = (extra: Partial<Answer>) =>
    pairsOfTurn(turn({ adapter: answer('one.'), again: answer('two!', extra) }, { preferred: 'again' }));
  assert.deepEqual(differ({ prompt: 'Another prompt' }), []);
  assert.deepEqual(differ({ adapter: '/lib/adapters/other.safetensors' }), []);
  assert.deepEqual(differ({ fingerprint: 'fp2' }), []);
  // The base model's answers (no adapter) are recorded as such.
  const base = pairsOfTurn(turn({ adapter: answer('a.', { adapter: null, edited: 'a!' }) }));
  assert.equal(base[0].adapter, null);
});

test("the pairs file: feedback replaces its turn's pairs; export is what aligner refine reads", () => {
  const dir = tempDir();
  const store = new PairStore(path.join(dir, 'ws', 'preference-pairs.jsonl'));
  assert.deepEqual(store.all(), [], 'no file yet: no pairs');
  const t1 = turn({ adapter: answer('one.', { edited: 'one!' }) });
  store.setTurn('t1', pairsOfTurn(t1, NOW));
  const t2 = { ...turn({ adapter: answer('two.'), again: answer('deux!') }, { preferred: 'again' as const }), id: 't2' };
  store.setTurn('t2', pairsOfTurn(t2, NOW));
  assert.deepEqual(
    store.all().map((p) => p.id),
    ['t1/edit-adapter', 't2/choice'],
  );
  // Feedback changed (the preference withdrawn): that turn's pair goes, the others stay.
  store.setTurn('t2', pairsOfTurn({ ...t2, preferred: undefined }, NOW));
  assert.deepEqual(
    store.all().map((p) => p.id),
    ['t1/edit-adapter'],
  );
  store.setTurn('t2', pairsOfTurn(t2, NOW));
  assert.equal(store.forAdapter('shout', 'fp1').length, 2);
  assert.equal(store.forAdapter('shout', 'fp2').length, 0);
  assert.equal(store.forAdapter('other', 'fp1').length, 0);
  // Written atomically: no temporary file is left beside it.
  assert.deepEqual(fs.readdirSync(path.dirname(store.file)), ['preference-pairs.jsonl']);
  const out = path.join(dir, 'export.jsonl');
  assert.equal(store.exportTo(out), 2);
  const set = readJsonl(out);
  assert.equal(set.form, 'preference');
  assert.deepEqual(set.records[1], { prompt: 'Once upon a time', chosen: 'deux!', rejected: 'two.' });
});

test('a corrupt pairs file is a one-line error naming the file and the line', () => {
  const dir = tempDir();
  const file = path.join(dir, 'preference-pairs.jsonl');
  const good = JSON.stringify(pairsOfTurn(turn({ adapter: answer('a.', { edited: 'a!' }) }), NOW)[0]);
  const store = new PairStore(file);
  fs.writeFileSync(file, `${good}\n{"prompt": "x", "chosen"\n`);
  assert.throws(() => store.all(), {
    message: `${file}:2: invalid JSON: Unexpected end of JSON input`,
  });
  fs.writeFileSync(file, `${good}\n${JSON.stringify({ ...JSON.parse(good), kind: 'vibes' })}\n`);
  assert.throws(() => store.all(), { message: `${file}:2: field "kind" must be one of edit, choice, rating` });
  fs.writeFileSync(file, `${good}\n{"text": "not a pair"}\n`);
  assert.throws(
    () => store.all(),
    (err: Error) => err.message.startsWith(`${file}:2: `) && !err.message.includes('\n'),
  );
  // Feedback is not recorded over a corrupt file (it would drop the lines it cannot read).
  assert.throws(() => store.setTurn('t9', []), new RegExp(`${file}:2`));
  assert.match(fs.readFileSync(file, 'utf8'), /not a pair/);
});

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { fallbackChatTemplate, toExamples, toPreferencePairs } from '../../src/data/examples';
import { BOS, FakeTokenizer, targetText } from './fake_tokenizer';

const big = { maxLen: 1000 };

test('text: every token after BOS is a target', () => {
  const tok = new FakeTokenizer();
  const [ex] = toExamples([{ text: 'hello' }], 'text', tok, big).items;
  assert.deepEqual(ex.ids, tok.encode('hello'));
  assert.deepEqual([...ex.isTarget], [0, 1, 1, 1, 1, 1]);
});

test('prompt/completion: completion tokens are targets, boundary exact', () => {
  const tok = new FakeTokenizer();
  const [ex] = toExamples([{ prompt: 'Say', completion: ' hi' }], 'prompt-completion', tok, big).items;
  assert.deepEqual(ex.ids, tok.encode('Say hi'));
  assert.equal(targetText(tok, ex.ids, ex.isTarget), ' hi');
});

test('prompt/completion: uses the joint tokenisation with a prepended-space normaliser', () => {
  const tok = new FakeTokenizer({ prependSpace: true });
  const [ex] = toExamples([{ prompt: 'Say', completion: ' hi' }], 'prompt-completion', tok, big).items;
  // Encoding " hi" alone would give "  hi"; the joint encoding has one space.
  assert.deepEqual(ex.ids, tok.encode('Say hi'));
  assert.equal(targetText(tok, ex.ids, ex.isTarget), ' hi');
});

test('prompt/completion: a token merging across the boundary falls back to separate encodings', () => {
  const tok = new FakeTokenizer();
  const [ex] = toExamples([{ prompt: 'pat', completion: 'h' }], 'prompt-completion', tok, big).items;
  assert.deepEqual(ex.ids, [BOS, ...tok.encode('pat', { addSpecialTokens: false }), ...tok.encode('h', { addSpecialTokens: false })]);
  assert.equal(targetText(tok, ex.ids, ex.isTarget), 'h');
});

test('messages: only assistant turns (with their end marker) are targets', () => {
  const tok = new FakeTokenizer({ chatTemplate: true });
  const messages = [
    { role: 'system' as const, content: 'be nice' },
    { role: 'user' as const, content: 'q1' },
    { role: 'assistant' as const, content: 'a1' },
    { role: 'user' as const, content: 'q2' },
    { role: 'assistant' as const, content: 'a2' },
  ];
  const [ex] = toExamples([{ messages }], 'messages', tok, big).items;
  assert.equal(tok.decode(ex.ids), tok.applyChatTemplate(messages));
  assert.equal(ex.ids[0], BOS);
  assert.equal(targetText(tok, ex.ids, ex.isTarget), 'a1[end]|a2[end]');
});

test('messages: fallback format without a chat template', () => {
  const tok = new FakeTokenizer();
  const messages = [
    { role: 'user' as const, content: 'q' },
    { role: 'assistant' as const, content: 'a' },
  ];
  assert.equal(fallbackChatTemplate(messages, false), 'user: q\nassistant: a\n');
  assert.equal(fallbackChatTemplate(messages.slice(0, 1), true), 'user: q\nassistant: ');
  const [ex] = toExamples([{ messages }], 'messages', tok, big).items;
  assert.deepEqual(ex.ids, tok.encode('user: q\nassistant: a\n'));
  assert.equal(targetText(tok, ex.ids, ex.isTarget), 'a\n');
});

test('truncation keeps the start; examples without targets are dropped', () => {
  const tok = new FakeTokenizer();
  const records = [
    { prompt: 'ab', completion: 'cd' }, // 5 tokens, cut to 4: keeps target "c"
    { prompt: 'abcd', completion: 'e' }, // target beyond maxLen: dropped
    { prompt: 'a', completion: 'b' }, // fits
  ];
  const result = toExamples(records, 'prompt-completion', tok, { maxLen: 4 });
  assert.equal(result.truncated, 1);
  assert.equal(result.dropped, 1);
  assert.equal(result.items.length, 2);
  assert.equal(targetText(tok, result.items[0].ids, result.items[0].isTarget), 'c');
  assert.equal(result.items[0].isTarget.length, 4);
});

test('messages without an assistant turn are dropped', () => {
  const tok = new FakeTokenizer({ chatTemplate: true });
  const result = toExamples([{ messages: [{ role: 'user', content: 'q' }] }], 'messages', tok, big);
  assert.equal(result.dropped, 1);
  assert.equal(result.items.length, 0);
});

test('preference pairs mask the prompt', () => {
  const tok = new FakeTokenizer();
  const { items } = toPreferencePairs([{ prompt: 'Q:', chosen: 'yes', rejected: 'no' }], tok, big);
  assert.equal(targetText(tok, items[0].chosen.ids, items[0].chosen.isTarget), 'yes');
  assert.equal(targetText(tok, items[0].rejected.ids, items[0].rejected.isTarget), 'no');
  assert.deepEqual(items[0].chosen.ids.slice(0, 3), tok.encode('Q:'));
});

test('preference pairs with an empty prompt score everything after BOS', () => {
  const tok = new FakeTokenizer();
  const { items } = toPreferencePairs([{ prompt: '', chosen: 'ab', rejected: 'c' }], tok, big);
  assert.deepEqual([...items[0].chosen.isTarget], [0, 1, 1]);
  assert.deepEqual([...items[0].rejected.isTarget], [0, 1]);
});

test('end token: appended as a target to text, completions and both answers of a pair, never twice', () => {
  const tok = new FakeTokenizer();
  const end = { maxLen: 1000, endId: 7 };
  const [text] = toExamples([{ text: 'hi' }], 'text', tok, end).items;
  assert.deepEqual(text.ids, [...tok.encode('hi'), 7]);
  assert.deepEqual([...text.isTarget], [0, 1, 1, 1]);
  const [pc] = toExamples([{ prompt: 'Say', completion: ' hi' }], 'prompt-completion', tok, end).items;
  assert.equal(pc.ids.at(-1), 7);
  assert.equal(pc.isTarget.at(-1), 1);
  const [pair] = toPreferencePairs([{ prompt: 'Q:', chosen: 'yes', rejected: 'no' }], tok, end).items;
  assert.equal(pair.chosen.ids.at(-1), 7);
  assert.equal(pair.rejected.ids.at(-1), 7);
  const [already] = toExamples([{ text: 'hi' }], 'text', tok, { maxLen: 1000, endId: tok.encode('hi').at(-1)! }).items;
  assert.deepEqual(already.ids, tok.encode('hi'));
});

test('end token: a text cut by maxLen has not ended and gets none', () => {
  const tok = new FakeTokenizer();
  const [ex] = toExamples([{ text: 'hello' }], 'text', tok, { maxLen: 4, endId: 7 }).items;
  assert.deepEqual(ex.ids, tok.encode('hello').slice(0, 4));
});

test('end token: chat examples keep what the template renders', () => {
  const tok = new FakeTokenizer();
  const messages = [
    { role: 'user' as const, content: 'q' },
    { role: 'assistant' as const, content: 'a' },
  ];
  const [plain] = toExamples([{ messages }], 'messages', tok, big).items;
  const [ended] = toExamples([{ messages }], 'messages', tok, { maxLen: 1000, endId: 7 }).items;
  assert.deepEqual(ended.ids, plain.ids);
});

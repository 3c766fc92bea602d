import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { chunkText } from '../../src/data/text';

test('packs paragraphs up to the budget', () => {
  const chunks = chunkText('aaaa\n\nbbbb\n\n\ncccc\r\n\r\ndddd', { maxChars: 10 });
  assert.deepEqual(chunks, [{ text: 'aaaa\n\nbbbb' }, { text: 'cccc\n\ndddd' }]);
});

test('never splits inside a fenced code block', () => {
  const code = '```js\nlet a = 1;\n\nlet b = 2;\n```';
  const chunks = chunkText(`intro\n\n${code}\n\noutro`, { maxChars: 12 });
  assert.deepEqual(chunks, [{ text: 'intro' }, { text: code }, { text: 'outro' }]);
});

test('splits an over-long paragraph at line boundaries, keeping fences whole', () => {
  const para = 'line one\nline two\n```\nx\ny\n```\nline three';
  const chunks = chunkText(para, { maxChars: 18 });
  assert.deepEqual(
    chunks.map((c) => c.text),
    ['line one\nline two', '```\nx\ny\n```', 'line three'],
  );
});

test('a paragraph within budget stays whole', () => {
  assert.deepEqual(chunkText('one\ntwo\n'), [{ text: 'one\ntwo' }]);
  assert.deepEqual(chunkText('\n\n'), []);
});

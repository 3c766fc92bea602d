// The inline-completion rules without VS Code: where prose is written, the prompt with and
// without fill-in-the-middle tokens, and the suggestion cut to the cursor's line.

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { CONTEXT_CHARS, inlinePrompt, suggestion, writesProse } from '../../src/extension/inlinePrompt';

const FIM = { prefix: '<|fim_prefix|>', suffix: '<|fim_suffix|>', middle: '<|fim_middle|>' };

test('prose languages everywhere; code only in comments', () => {
  assert.equal(writesProse('markdown', 'Once upon'), true);
  assert.equal(writesProse('git-commit', ''), true);
  assert.equal(writesProse('typescript', '  // explain why we '), true);
  assert.equal(writesProse('typescript', ' * the cache keeps'), true);
  assert.equal(writesProse('typescript', '  const x = '), false);
  assert.equal(writesProse('python', '    # the loop '), true);
  assert.equal(writesProse('python', '    x = 1 '), false);
  assert.equal(writesProse('sql', '-- totals per '), true);
  // '*' opens no comment in Python.
  assert.equal(writesProse('python', ' * not a comment'), false);
  assert.equal(writesProse('json', '"a": '), false);
});

test('FIM prompt: prefix, suffix, middle in the model family format; plain continuation otherwise', () => {
  assert.equal(inlinePrompt('Dear Tom, ', '\nBest, Lily', FIM), '<|fim_prefix|>Dear Tom, <|fim_suffix|>\nBest, Lily<|fim_middle|>');
  assert.equal(inlinePrompt('Dear Tom, ', '\nBest, Lily', null), 'Dear Tom, ');
});

test('long documents: the text nearest the cursor is kept', () => {
  const before = 'a'.repeat(5000) + 'END';
  const after = 'START' + 'b'.repeat(5000);
  const plain = inlinePrompt(before, after, null);
  assert.equal(plain.length, CONTEXT_CHARS.before);
  assert.ok(plain.endsWith('END'));
  const fim = inlinePrompt(before, after, FIM);
  assert.ok(fim.includes(`END${FIM.suffix}START`));
  assert.equal(fim.length, CONTEXT_CHARS.before + CONTEXT_CHARS.after + FIM.prefix.length + FIM.suffix.length + FIM.middle.length);
});

test('the suggestion ends with its first line, without trailing spaces', () => {
  assert.equal(suggestion(' there was a dog.  \nThe dog', 'Once upon a time,'), ' there was a dog.');
  assert.equal(suggestion('   \n', 'x'), '');
  assert.equal(suggestion('  Lily went out.', ''), 'Lily went out.');
  assert.equal(suggestion('  Lily went out.', 'Then'), '  Lily went out.');
});

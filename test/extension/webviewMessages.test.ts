// src/extension/webviewMessages.ts: a message from a webview is accepted only when it
// matches its declared schema exactly, and the accepted value is typed by it.

import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { CHAT_FROM_WEBVIEW, TRAIN_FROM_WEBVIEW, validate, type ChatFromWebview } from '../../src/extension/webviewMessages';

test('declared messages pass, typed by their schema', () => {
  const send = validate({ type: 'send', text: 'hi', compare: true }, CHAT_FROM_WEBVIEW);
  assert.deepEqual(send, { type: 'send', text: 'hi', compare: true });
  // The result's type is the declared union: this narrowing compiles only if it is.
  const typed: ChatFromWebview | null = send;
  if (typed?.type === 'send') assert.equal(typed.compare, true);
  assert.deepEqual(validate({ type: 'use' }, TRAIN_FROM_WEBVIEW), { type: 'use' });
});

test('anything else is refused', () => {
  const refused: unknown[] = [
    null,
    'send',
    [],
    { type: 'nope' },
    { type: 'toString' },
    { type: 'send', text: 'hi' },
    { type: 'send', text: 1, compare: true },
    { type: 'send', text: 'hi', compare: true, extra: 1 },
    { type: 'copy', text: 'x'.repeat(200_001) },
    { type: 'cancel' },
  ];
  for (const m of refused) assert.equal(validate(m, CHAT_FROM_WEBVIEW), null, JSON.stringify(m)?.slice(0, 80));
  assert.equal(validate({ type: 'n', v: Number.NaN }, { n: { v: 'number' } }), null);
  assert.deepEqual(validate({ type: 'o' }, { o: { v: 'string?' } }), { type: 'o' });
  assert.equal(validate({ type: 'o', v: 3 }, { o: { v: 'string?' } }), null);
});

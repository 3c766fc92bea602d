// src/model/generation.ts: the ids that end a text.

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { stopTokenIds } from '../../src/model/generation';

test('stop token ids: EOS ids, plus BOS on request', () => {
  const gen = { bosTokenId: 1, eosTokenIds: [2, 7] };
  assert.deepEqual([...stopTokenIds(gen)].sort(), [2, 7]);
  assert.deepEqual([...stopTokenIds(gen, { stopOnBos: true })].sort(), [1, 2, 7]);
  assert.deepEqual([...stopTokenIds({ bosTokenId: null, eosTokenIds: [] }, { stopOnBos: true })], []);
});

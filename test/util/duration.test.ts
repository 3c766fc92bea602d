// src/util/duration.ts: time left and time taken, for people.

import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDuration } from '../../src/util/duration';

test('formatDuration: seconds, then minutes, then hours; never negative', () => {
  assert.equal(formatDuration(-3), '0 s');
  assert.equal(formatDuration(0.4), '0 s');
  assert.equal(formatDuration(59.4), '59 s');
  assert.equal(formatDuration(59.6), '1 min 0 s');
  assert.equal(formatDuration(200), '3 min 20 s');
  assert.equal(formatDuration(3600 + 5 * 60 + 7), '1 h 5 min');
});

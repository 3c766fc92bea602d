// The worker restart policy (issue 6, defect 11): after "will not be restarted", nothing restarts it.

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { MAX_CRASHES, RestartPolicy, WINDOW_MS } from '../../src/extension/restart';

test('restarts until it crashed too often within the window, then stays stopped', () => {
  const p = new RestartPolicy();
  for (let i = 0; i < MAX_CRASHES; i++) assert.equal(p.crashed(i * 1000), 'restart');
  assert.equal(p.gaveUp, false);
  assert.equal(p.crashed(MAX_CRASHES * 1000), 'give-up');
  assert.equal(p.gaveUp, true);
  // Time passing does not undo it: a later crash or request must not start it again.
  assert.equal(p.crashed(10 * WINDOW_MS), 'give-up');
  assert.equal(p.gaveUp, true);
});

test('crashes spread over more than the window keep restarting', () => {
  const p = new RestartPolicy();
  for (let i = 0; i < 4 * MAX_CRASHES; i++) assert.equal(p.crashed(i * WINDOW_MS), 'restart');
});

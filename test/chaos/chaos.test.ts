// The reduced fault campaign and soak of campaign.ts (the full ones: `npm run chaos`).

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { runCampaign, runSoak } from './campaign';

const log = (s: string) => process.env.ALIGNER_TEST_VERBOSE && process.stderr.write(`${s}\n`);

test(
  'SIGKILL at random moments of training, adapter writes, weights conversion and generation; a full disk',
  { timeout: 600_000 },
  async () => {
    const c = await runCampaign(1, log, 7);
    assert.equal(c.survived, 4);
    assert.ok(c.filesChecked >= 4);
  },
);

test('soak: chat requests with random cancellations and adapter switches, each answered once, RSS flat', { timeout: 600_000 }, async () => {
  const s = await runSoak(300, log, 9);
  assert.equal(s.lost, 0);
  assert.equal(s.answeredTwice, 0);
  assert.equal(s.completed + s.cancelled, 300);
  assert.ok(s.cancelled > 0 && s.adapterSwitches > 0);
  assert.ok(s.rssEndMB <= 1.1 * s.rssAfter100MB, `RSS grew from ${s.rssAfter100MB.toFixed(1)} MB to ${s.rssEndMB.toFixed(1)} MB`);
});

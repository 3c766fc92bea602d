// An adapter's versions (src/adapter/history.ts): kept beside it, listed newest first, put back
// without losing the current content, and nothing but its own versions accepted.

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { historyDir, keepVersion, keptAt, listVersions, revertTo, versionLabel } from '../../src/adapter/history';
import { tempDir } from '../model/paths';

test('versions are kept beside the adapter, listed newest first, and a revert keeps the current content', () => {
  const dir = tempDir();
  const file = path.join(dir, 'my style.safetensors');
  assert.equal(historyDir(file), path.join(dir, 'my style.history'));
  assert.deepEqual(listVersions(file), [], 'no history yet');
  fs.writeFileSync(file, 'v1');
  const first = keepVersion(file, new Date('2026-11-29T04:00:00.000Z'));
  assert.equal(path.basename(first), '2026-11-29T04-00-00-000Z.safetensors');
  assert.equal(keptAt(first), '2026-11-29T04:00:00.000Z');
  assert.match(versionLabel(first), /^my style of /);
  fs.writeFileSync(file, 'v2');
  // Two versions kept within the same millisecond get distinct names.
  const second = keepVersion(file, new Date('2026-11-29T04:00:00.000Z'));
  assert.equal(path.basename(second), '2026-11-29T04-00-00-000Z-2.safetensors');
  fs.writeFileSync(file, 'v3');
  const third = keepVersion(file, new Date('2026-11-29T05:00:00.000Z'));
  assert.deepEqual(listVersions(file), [third, second, first]);

  const kept = revertTo(file, first);
  assert.equal(fs.readFileSync(file, 'utf8'), 'v1');
  assert.equal(fs.readFileSync(kept, 'utf8'), 'v3', 'the content a revert replaces is kept');
  assert.equal(listVersions(file).length, 4);
  // Nothing but the adapter's own versions, and no temporary files left behind.
  fs.writeFileSync(path.join(dir, 'other.safetensors'), 'x');
  assert.throws(() => revertTo(file, path.join(dir, 'other.safetensors')), /is not a version of/);
  assert.throws(() => revertTo(file, path.join(historyDir(file), '2020-01-01T00-00-00-000Z.safetensors')), /is not a version of/);
  assert.equal(fs.readFileSync(file, 'utf8'), 'v1');
  assert.ok(fs.readdirSync(historyDir(file)).every((n) => keptAt(n) !== null));
});

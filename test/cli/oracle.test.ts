// `npm run oracle -- DIR` on ../shared/oracle: every vector file must pass, and
// the checker must fail loudly on a case it does not know.

import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { SHARED, tempDir } from '../model/paths';

const ORACLE_CLI = path.resolve(__dirname, '..', '..', 'src', 'cli', 'oracle.js');
const ORACLE = path.join(SHARED, 'oracle');

function runOracle(dir: string) {
  return spawnSync(process.execPath, [ORACLE_CLI, dir], { encoding: 'utf8' });
}

test('every oracle vector file passes', () => {
  const r = runOracle(ORACLE);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const files = fs.readdirSync(ORACLE).filter((f) => f.endsWith('.json'));
  assert.ok(files.length >= 9);
  for (const f of files) assert.match(r.stdout, new RegExp(`^PASS ${f.replace('.', '\\.')} `, 'm'));
  assert.match(r.stdout, /max abs/);
});

test('an unknown case or a missing field fails the run', () => {
  const dir = path.join(tempDir(), 'shared', 'oracle');
  fs.mkdirSync(dir, { recursive: true });
  const base = JSON.parse(fs.readFileSync(path.join(ORACLE, 'base_logits.json'), 'utf8'));
  fs.writeFileSync(path.join(dir, 'a.json'), JSON.stringify({ ...base, case: 'no_such_case' }));
  fs.writeFileSync(
    path.join(dir, 'b.json'),
    JSON.stringify({
      ...base,
      expected: { ...base.expected, extra_field: [1] },
      tolerances: { ...base.tolerances, extra_field: { exact: true } },
    }),
  );
  // The files name their checkpoint relative to the oracle folder's grandparent.
  fs.symlinkSync(path.join(SHARED, 'models'), path.join(dir, '..', 'models'));
  const r = runOracle(dir);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /FAIL a\.json \(no_such_case\): unknown case "no_such_case"/);
  assert.match(r.stdout, /FAIL extra_field: not computed/);
  assert.match(r.stdout, /0 passed, 2 failed/);
});

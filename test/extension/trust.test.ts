// Which adapter paths from workspace settings need the user's confirmation (issue 6, defect 13).

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { needsConfirmation } from '../../src/extension/trust';

const ws = ['/home/u/project'];
const lib = ['/home/u/.config/Code/User/globalStorage/aligner.aligner-vscode/adapters', '/home/u/project/.vscode/aligner'];

test('paths from workspace settings outside the workspace and the library need confirmation', () => {
  assert.equal(needsConfirmation('/home/u/project/.vscode/aligner/team.safetensors', true, ws, lib), false);
  assert.equal(needsConfirmation('/home/u/project/adapters/a.safetensors', true, ws, lib), false);
  assert.equal(needsConfirmation(`${lib[0]}/mine.safetensors`, true, ws, lib), false);
  assert.equal(needsConfirmation('/tmp/evil.safetensors', true, ws, lib), true);
  assert.equal(needsConfirmation('/home/u/project/../other/a.safetensors', true, ws, lib), true);
  assert.equal(needsConfirmation('/home/u/project-evil/a.safetensors', true, ws, lib), true);
  assert.equal(needsConfirmation('/dev/zero', true, ws, lib), true);
  // The user's own settings are trusted.
  assert.equal(needsConfirmation('/tmp/mine.safetensors', false, ws, lib), false);
});

test('package.json declares limited support in untrusted workspaces with both settings restricted', () => {
  const pkg = JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', '..', '..', 'package.json'), 'utf8'));
  const u = pkg.capabilities?.untrustedWorkspaces;
  assert.equal(u?.supported, 'limited');
  assert.deepEqual([...(u?.restrictedConfigurations ?? [])].sort(), ['aligner.adapter', 'aligner.baseModel']);
  assert.ok(typeof u.description === 'string' && u.description.length > 20);
});

// Runs the built `aligner` CLI as a user would.

import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

export const CLI = path.resolve(__dirname, '..', '..', 'src', 'cli', 'main.js');

export function aligner(...args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
}

/** The CLI with extra environment variables (e.g. HOME pointing at fake model stores). */
export function alignerWithEnv(env: Record<string, string>, ...args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
}

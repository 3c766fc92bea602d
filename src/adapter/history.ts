// An adapter's earlier versions, kept beside it in `<name>.history/<when>.safetensors`: a
// refinement keeps the adapter it replaced there, and a revert keeps the current one before it
// puts a version back, so no version is ever lost. Every write is atomic (util/atomic.ts).

import * as fs from 'fs';
import * as path from 'path';
import { sweepTemporaries, writeFileAtomic } from '../util/atomic';
import { AdapterError } from './errors';

const EXT = '.safetensors';

/** `dir/name.safetensors` -> `dir/name.history`. */
export function historyDir(file: string): string {
  const abs = path.resolve(file);
  return path.join(path.dirname(abs), `${path.basename(abs).replace(/\.safetensors$/i, '')}.history`);
}

/** A version's file name: the time it was kept, sortable as text ("2026-11-29T04-10-05-123Z"). */
function stamp(when: Date): string {
  return when.toISOString().replace(/[:.]/g, '-');
}

/** When a version was kept, from its file name (ISO 8601); null for a name this module did not write. */
export function keptAt(version: string): string | null {
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d)-(\d\d)-(\d\d)-(\d{3})Z(?:-\d+)?\.safetensors$/i.exec(path.basename(version));
  return m ? `${m[1]}T${m[2]}:${m[3]}:${m[4]}.${m[5]}Z` : null;
}

/** "name of <date and time>" for a version file, for people. */
export function versionLabel(version: string): string {
  const kept = keptAt(version);
  const name = path.basename(path.dirname(version)).replace(/\.history$/, '');
  return kept ? `${name} of ${new Date(kept).toLocaleString()}` : path.basename(version, EXT);
}

/** Copies the current content of `file` into its history; returns the version's path. */
export function keepVersion(file: string, when = new Date()): string {
  const dir = historyDir(file);
  fs.mkdirSync(dir, { recursive: true });
  sweepTemporaries(dir);
  const base = stamp(when);
  let version = path.join(dir, `${base}${EXT}`);
  for (let n = 2; fs.existsSync(version); n++) version = path.join(dir, `${base}-${n}${EXT}`);
  writeFileAtomic(version, fs.readFileSync(file));
  return version;
}

/** The versions of `file`, newest first (none when it has no history). */
export function listVersions(file: string): string[] {
  const dir = historyDir(file);
  sweepTemporaries(dir);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  // By time, then by the number that tells apart versions kept within the same millisecond.
  const order = (n: string): [string, number] => [keptAt(n)!, Number(/-(\d+)\.safetensors$/i.exec(n)?.[1] ?? 1)];
  return names
    .filter((n) => keptAt(n) !== null)
    .map((n) => ({ n, key: order(n) }))
    .sort((a, b) => (a.key[0] === b.key[0] ? b.key[1] - a.key[1] : a.key[0] < b.key[0] ? 1 : -1))
    .map(({ n }) => path.join(dir, n));
}

/** The absolute path of `version`; an AdapterError unless it is one of `file`'s versions. */
export function checkVersion(file: string, version: string): string {
  const abs = path.resolve(version);
  if (path.dirname(abs) !== historyDir(file) || keptAt(abs) === null || !fs.existsSync(abs))
    throw new AdapterError(`${version} is not a version of ${file} (its versions are in ${historyDir(file)})`);
  return abs;
}

/**
 * Makes `version` (one of `file`'s versions) the current content of `file`. The current content
 * is kept as a version first; returns that version's path.
 */
export function revertTo(file: string, version: string): string {
  const content = fs.readFileSync(checkVersion(file, version));
  const kept = keepVersion(file);
  writeFileAtomic(path.resolve(file), content);
  return kept;
}

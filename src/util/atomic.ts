// Atomic file writes (temporary file, fsync, rename) and the sweeping of temporaries that a
// killed writer left behind.

import * as fs from 'fs';
import * as path from 'path';
import { randomBytes } from 'crypto';

/** What to write: one buffer, a string (UTF-8), or a sequence of chunks written in order. */
export type FileContent = Uint8Array | string | Iterable<Uint8Array>;

/**
 * Writes `file` so that readers see either the old content or the complete new one, never a
 * half-written file: the data goes to a temporary file in the same directory (so the final
 * rename stays on one file system and is atomic), is fsynced, then renamed over `file`.
 * On any failure the temporary file is removed and `file` is left untouched.
 */
export function writeFileAtomic(file: string, content: FileContent): void {
  const dir = path.dirname(file);
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = fs.openSync(temp, 'wx');
  try {
    try {
      for (const chunk of chunksOf(content)) writeAll(fd, chunk);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temp, file);
  } catch (err) {
    fs.rmSync(temp, { force: true });
    throw diskFull(file, err) ?? err;
  }
  syncDirectory(dir);
}

/** A write that failed for lack of room: the disk or quota is full, or the process's file-size limit (ulimit -f) was hit. */
export class DiskFullError extends Error {
  constructor(
    readonly file: string,
    readonly code: string,
  ) {
    super(
      `${file} was not written: ${code === 'EFBIG' ? 'the file size limit was reached' : 'the disk is full'} (${code}); nothing was changed`,
    );
    this.name = 'DiskFullError';
  }
}

function diskFull(file: string, err: unknown): DiskFullError | null {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'ENOSPC' || code === 'EFBIG' || code === 'EDQUOT' ? new DiskFullError(file, code) : null;
}

/**
 * Removes what writeFileAtomic leaves behind in `dir` when its process is killed mid-write:
 * temporary files named by a process that no longer runs.
 */
export function sweepTemporaries(dir: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$/.exec(name);
    if (m && !processAlive(Number(m[1]))) fs.rmSync(path.join(dir, name), { force: true });
  }
}

/** Whether a process with this id runs on this machine (EPERM: it does, as another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function chunksOf(content: FileContent): Iterable<Uint8Array> {
  if (typeof content === 'string') return [Buffer.from(content, 'utf8')];
  if (content instanceof Uint8Array) return [content];
  return content;
}

function writeAll(fd: number, chunk: Uint8Array): void {
  let done = 0;
  while (done < chunk.length) done += fs.writeSync(fd, chunk, done, chunk.length - done);
}

/** Makes the rename itself durable. Not every platform can open a directory (Windows), hence best effort. */
function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // The data is already safe in the renamed file; only the directory entry's durability is at stake.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

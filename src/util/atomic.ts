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
    throw err;
  }
  syncDirectory(dir);
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

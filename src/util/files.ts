// Reading files named by users or found on disk without trusting them: only regular files
// (a FIFO, /dev/zero or a socket is refused without blocking, because the open is
// non-blocking and the type is checked on the open descriptor), and never more bytes than
// the caller allows. Errors are plain messages; callers wrap them in their own error type.

import * as fs from 'fs';

/** A regular file opened for reading; close it with fs.closeSync(fd). */
export interface OpenFile {
  fd: number;
  size: number;
}

/** Why a file cannot be read, in words ("file not found", "not a regular file", …). */
export class FileReadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FileReadError';
  }
}

/**
 * Opens `file` for reading if it is a regular file (symbolic links are followed) of at most
 * `maxBytes` bytes. O_NONBLOCK makes opening a FIFO return at once instead of waiting for a
 * writer; it has no effect on regular files.
 */
export function openRegularFile(file: string, maxBytes = Number.MAX_SAFE_INTEGER): OpenFile {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new FileReadError(code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a folder, not a file' : `cannot read (${code})`);
  }
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw new FileReadError(`not a regular file (${kindOf(stat)})`);
    if (stat.size > maxBytes) throw new FileReadError(`${stat.size} bytes, more than the ${maxBytes} allowed`);
    return { fd, size: stat.size };
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

/** The whole content of a regular file of at most `maxBytes` bytes, in a fresh buffer. */
export function readRegularFile(file: string, maxBytes: number): Buffer {
  const { fd, size } = openRegularFile(file, maxBytes);
  try {
    return readExactly(fd, 0, size);
  } finally {
    fs.closeSync(fd);
  }
}

/** `length` bytes at `position`, into a fresh buffer; a file that shrank meanwhile is an error. */
export function readExactly(fd: number, position: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, out, done, length - done, position + done);
    if (n === 0) throw new FileReadError(`truncated: ended after ${position + done} bytes`);
    done += n;
  }
  return out;
}

function kindOf(stat: fs.Stats): string {
  if (stat.isDirectory()) return 'a folder';
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isSocket()) return 'a socket';
  return 'not a file';
}

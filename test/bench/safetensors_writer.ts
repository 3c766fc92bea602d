// A small streaming safetensors writer for the bench's random-weight models (the format:
// 8-byte little-endian header length, a JSON header padded with spaces to a multiple of 8,
// then the raw little-endian tensor bytes in header order). Float32 only.

import * as fs from 'fs';

export interface TensorSource {
  name: string;
  shape: number[];
  /** Fills `dst` with elements [start, start + dst.length) of the tensor, called in increasing order. */
  fill(dst: Float32Array, start: number): void;
}

const CHUNK = 1 << 20; // elements per write

export function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Builds the header bytes (already padded) for the given tensors, in order. */
export function safetensorsHeader(
  tensors: { name: string; shape: number[] }[],
  metadata: Record<string, string> = { format: 'pt' },
): Buffer {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    const bytes = numel(t.shape) * 4;
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  // The 8-byte length prefix is itself a multiple of 8, so padding the JSON keeps the data aligned.
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const body = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + body.length);
  out.writeBigUInt64LE(BigInt(body.length), 0);
  body.copy(out, 8);
  return out;
}

/** Writes `file` (via a temporary file and a rename); returns its size in bytes. */
export function writeSafetensors(file: string, tensors: TensorSource[], metadata?: Record<string, string>): number {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  let size = 0;
  try {
    const head = safetensorsHeader(tensors, metadata);
    fs.writeSync(fd, head);
    size += head.length;
    const buf = new Float32Array(CHUNK);
    for (const t of tensors) {
      const n = numel(t.shape);
      for (let start = 0; start < n; start += CHUNK) {
        const len = Math.min(CHUNK, n - start);
        const dst = len === CHUNK ? buf : buf.subarray(0, len);
        t.fill(dst, start);
        const bytes = new Uint8Array(dst.buffer, dst.byteOffset, len * 4);
        let done = 0;
        while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done);
        size += bytes.length;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  return size;
}

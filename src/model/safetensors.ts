import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomic } from '../util/atomic';
import { ModelLoadError } from './errors';
import type { DType, TensorRef } from './types';
import { DTYPE_BYTES, toFloat32 } from './weights';

export interface SafetensorsContents {
  tensors: TensorRef[];
  metadata: Record<string, string>;
}

export interface F32Tensor {
  name: string;
  dtype: 'F32';
  shape: number[];
  data: Float32Array;
}

export interface LoadedTensor {
  dtype: DType;
  shape: number[];
  data: Float32Array;
}

/** Reads and validates the header of a .safetensors file; the TensorRefs point into it. */
export function readSafetensors(file: string): SafetensorsContents {
  const label = path.basename(file);
  const fd = openForReading(file);
  try {
    const size = fs.fstatSync(fd).size;
    const prefix = readAt(fd, 0, Math.min(8, size));
    const headerLength = headerLengthOf(prefix, size, label);
    return parseHeader(readAt(fd, 8, headerLength), size, file, label);
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads a small safetensors file held in memory (an adapter) into float32 tensors. */
export function readSafetensorsBuffer(
  buf: Uint8Array,
  name: string,
): { tensors: Map<string, LoadedTensor>; metadata: Record<string, string> } {
  const headerLength = headerLengthOf(buf.subarray(0, 8), buf.length, name);
  const { tensors, metadata } = parseHeader(buf.subarray(8, 8 + headerLength), buf.length, name, name);
  const loaded = new Map<string, LoadedTensor>();
  for (const t of tensors) {
    const bytes = buf.slice(t.offset, t.offset + t.byteLength); // a copy, so it is aligned
    loaded.set(t.name, { dtype: t.dtype, shape: t.shape, data: toFloat32(bytes, t.dtype) });
  }
  return { tensors: loaded, metadata };
}

/**
 * The TensorRefs of a model folder: `model.safetensors`, or the shards listed by
 * `model.safetensors.index.json` (each name must be in the shard its weight_map names).
 */
export function readSafetensorsFolder(dir: string): SafetensorsContents {
  const single = path.join(dir, 'model.safetensors');
  if (fs.existsSync(single)) return readSafetensors(single);
  const indexFile = path.join(dir, 'model.safetensors.index.json');
  if (!fs.existsSync(indexFile)) {
    throw new ModelLoadError(`${dir}: no weights: neither model.safetensors nor model.safetensors.index.json exists`);
  }
  const weightMap = readWeightMap(indexFile);
  const shards = new Map<string, SafetensorsContents>();
  const tensors: TensorRef[] = [];
  for (const [name, shard] of Object.entries(weightMap)) {
    if (path.basename(shard) !== shard) {
      throw new ModelLoadError(`model.safetensors.index.json: shard "${shard}" of tensor "${name}" is not a file in the model folder`);
    }
    if (!shards.has(shard)) shards.set(shard, readSafetensors(path.join(dir, shard)));
    const ref = shards.get(shard)!.tensors.find((t) => t.name === name);
    if (!ref) throw new ModelLoadError(`${shard}: tensor "${name}" listed in model.safetensors.index.json is not in this shard`);
    tensors.push(ref);
  }
  const metadata = Object.assign({}, ...[...shards.values()].map((s) => s.metadata)) as Record<string, string>;
  return { tensors, metadata };
}

/** Writes float32 tensors and string metadata as one safetensors file, atomically. */
export function writeSafetensors(file: string, tensors: F32Tensor[], metadata: Record<string, string>): void {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) {
      throw new Error(`${path.basename(file)}: tensor "${t.name}" has ${t.data.length} values but shape [${t.shape}]`);
    }
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  // The format asks that the data start 8-byte aligned; the header is padded with spaces.
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(headerBytes.length));
  writeFileAtomic(file, [length, headerBytes, ...tensors.map((t) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength))]);
}

function headerLengthOf(prefix: Uint8Array, size: number, label: string): number {
  if (size < 8) throw new ModelLoadError(`${label}: not a safetensors file: ${size} bytes, too short for the 8-byte header length`);
  const length = Buffer.from(prefix.buffer, prefix.byteOffset, 8).readBigUInt64LE();
  if (length > BigInt(size - 8)) {
    throw new ModelLoadError(`${label}: header length ${length} is larger than the file (${size} bytes)`);
  }
  return Number(length);
}

function parseHeader(bytes: Uint8Array, fileSize: number, file: string, label: string): SafetensorsContents {
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (err) {
    throw new ModelLoadError(`${label}: header is not valid JSON (${(err as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new ModelLoadError(`${label}: header is not a JSON object`);
  }
  const dataStart = 8 + bytes.byteLength;
  const tensors: TensorRef[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') metadata = readMetadata(entry, label);
    else tensors.push(readEntry(name, entry, dataStart, file, label));
  }
  checkLayout(tensors, fileSize, label);
  return { tensors, metadata };
}

function readMetadata(entry: unknown, label: string): Record<string, string> {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
    throw new ModelLoadError(`${label}: __metadata__ must be an object of strings`);
  }
  for (const [key, value] of Object.entries(entry)) {
    if (typeof value !== 'string') throw new ModelLoadError(`${label}: __metadata__ field "${key}" is not a string`);
  }
  return entry as Record<string, string>;
}

function readEntry(name: string, entry: unknown, dataStart: number, file: string, label: string): TensorRef {
  const e = (entry ?? {}) as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  const dtype = e.dtype;
  if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) {
    throw new ModelLoadError(`${label}: tensor "${name}" has unsupported dtype ${JSON.stringify(dtype)}; supported: F32, F16, BF16`);
  }
  const shape = e.shape;
  if (!Array.isArray(shape) || !shape.every((n) => Number.isSafeInteger(n) && n >= 0)) {
    throw new ModelLoadError(`${label}: tensor "${name}" has an invalid shape ${JSON.stringify(shape)}`);
  }
  const offsets = e.data_offsets;
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((n) => Number.isSafeInteger(n) && n >= 0) || offsets[0] > offsets[1]) {
    throw new ModelLoadError(`${label}: tensor "${name}" has invalid data_offsets ${JSON.stringify(offsets)}`);
  }
  const byteLength = shape.reduce((a: number, b: number) => a * b, 1) * DTYPE_BYTES[dtype as DType];
  if (offsets[1] - offsets[0] !== byteLength) {
    throw new ModelLoadError(
      `${label}: tensor "${name}" data_offsets ${JSON.stringify(offsets)} span ${offsets[1] - offsets[0]} bytes, but ${dtype} [${shape}] needs ${byteLength}`,
    );
  }
  return { name, dtype: dtype as DType, shape: shape as number[], file, offset: dataStart + offsets[0], byteLength };
}

/** No two tensors may share bytes, and the file must hold every tensor's bytes. */
function checkLayout(tensors: TensorRef[], fileSize: number, label: string): void {
  const sorted = [...tensors].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    if (prev.offset + prev.byteLength > sorted[i].offset) {
      throw new ModelLoadError(`${label}: tensors "${prev.name}" and "${sorted[i].name}" overlap`);
    }
  }
  for (const t of sorted) {
    if (t.offset + t.byteLength > fileSize) {
      throw new ModelLoadError(
        `${label}: truncated: tensor "${t.name}" needs bytes ${t.offset}..${t.offset + t.byteLength} but the file has ${fileSize} bytes`,
      );
    }
  }
}

function readWeightMap(indexFile: string): Record<string, string> {
  const label = path.basename(indexFile);
  let index: { weight_map?: unknown };
  try {
    index = JSON.parse(fs.readFileSync(indexFile, 'utf8'));
  } catch (err) {
    throw new ModelLoadError(`${label}: not valid JSON (${(err as Error).message})`);
  }
  const map = index?.weight_map;
  if (typeof map !== 'object' || map === null || !Object.values(map).every((v) => typeof v === 'string')) {
    throw new ModelLoadError(`${label}: field "weight_map" must map tensor names to shard file names`);
  }
  return map as Record<string, string>;
}

function openForReading(file: string): number {
  try {
    return fs.openSync(file, 'r');
  } catch (err) {
    throw new ModelLoadError(`${file}: cannot open (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

function readAt(fd: number, position: number, length: number): Uint8Array {
  const out = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, out, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return out;
}

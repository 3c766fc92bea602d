import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomic } from '../util/atomic';
import { FileReadError, openRegularFile, readExactly, readRegularFile } from '../util/files';
import { excerpt, parseJson } from '../util/json';
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

/** What a reader accepts; a header past `maxHeader` bytes (or a file past `maxFile`) is refused before it is read. */
export interface SafetensorsLimits {
  maxHeader: number;
  maxFile: number;
}

/** The reference implementation's header cap (safetensors' MAX_HEADER_SIZE); model files may be any size. */
export const MODEL_LIMITS: SafetensorsLimits = { maxHeader: 100_000_000, maxFile: Number.MAX_SAFE_INTEGER };

/** An index names each tensor once: a few MB for the largest models. */
const MAX_INDEX_BYTES = 64 * 1024 * 1024;

/** A valid header is nested 3 deep ({name: {shape: [...]}}); a little slack for unknown fields. */
const MAX_HEADER_DEPTH = 8;

export interface LoadedTensor {
  dtype: DType;
  shape: number[];
  data: Float32Array;
}

/** Reads and validates the header of a .safetensors file; the TensorRefs point into it. `label` names it in errors. */
export function readSafetensors(file: string, limits: SafetensorsLimits = MODEL_LIMITS, label = path.basename(file)): SafetensorsContents {
  const { fd, size } = openOrFail(file, label, limits.maxFile);
  try {
    const headerLength = headerLengthOf(size < 8 ? Buffer.alloc(0) : readExactly(fd, 0, 8), size, label, limits);
    return parseHeader(readExactly(fd, 8, headerLength), size, file, label);
  } catch (err) {
    throw err instanceof FileReadError ? new ModelLoadError(`${label}: ${err.message}`) : err;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Reads a small safetensors file held in memory (an adapter) into float32 tensors. Each tensor is
 * copied out of `buf`: the format does not align tensor data (the header length need not be a
 * multiple of 8), so nothing may be viewed in place.
 */
export function readSafetensorsBuffer(
  buf: Uint8Array,
  name: string,
  limits: SafetensorsLimits = MODEL_LIMITS,
): { tensors: Map<string, LoadedTensor>; metadata: Record<string, string> } {
  if (buf.length > limits.maxFile) throw new ModelLoadError(`${name}: ${buf.length} bytes, more than the ${limits.maxFile} allowed`);
  const headerLength = headerLengthOf(buf.subarray(0, 8), buf.length, name, limits);
  const { tensors, metadata } = parseHeader(buf.subarray(8, 8 + headerLength), buf.length, name, name);
  const loaded = new Map<string, LoadedTensor>();
  for (const t of tensors) {
    loaded.set(t.name, {
      dtype: t.dtype,
      shape: t.shape,
      data: toFloat32(copyOf(buf.subarray(t.offset, t.offset + t.byteLength)), t.dtype),
    });
  }
  return { tensors: loaded, metadata };
}

/** A copy of `bytes` in a buffer of its own, so it starts at offset 0 (aligned for any typed array). */
function copyOf(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.byteLength);
  out.set(bytes);
  return out;
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
      throw new ModelLoadError(
        `model.safetensors.index.json: shard ${excerpt(shard)} of tensor ${excerpt(name)} is not a file in the model folder`,
      );
    }
    if (!shards.has(shard)) shards.set(shard, readSafetensors(path.join(dir, shard)));
    const ref = shards.get(shard)!.tensors.find((t) => t.name === name);
    if (!ref) throw new ModelLoadError(`${shard}: tensor ${excerpt(name)} listed in model.safetensors.index.json is not in this shard`);
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

function headerLengthOf(prefix: Uint8Array, size: number, label: string, limits: SafetensorsLimits): number {
  if (size < 8) throw new ModelLoadError(`${label}: not a safetensors file: ${size} bytes, too short for the 8-byte header length`);
  const length = Buffer.from(prefix.buffer, prefix.byteOffset, 8).readBigUInt64LE();
  if (length > BigInt(size - 8)) {
    throw new ModelLoadError(`${label}: header length ${length} is larger than the file (${size} bytes)`);
  }
  if (length > BigInt(limits.maxHeader)) {
    throw new ModelLoadError(`${label}: header of ${length} bytes, more than the ${limits.maxHeader} allowed`);
  }
  return Number(length);
}

function parseHeader(bytes: Uint8Array, fileSize: number, file: string, label: string): SafetensorsContents {
  let header: unknown;
  try {
    header = parseJson(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'), MAX_HEADER_DEPTH);
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
    if (typeof value !== 'string') throw new ModelLoadError(`${label}: __metadata__ field ${excerpt(key)} is not a string`);
  }
  return entry as Record<string, string>;
}

function readEntry(name: string, entry: unknown, dataStart: number, file: string, label: string): TensorRef {
  const e = (entry ?? {}) as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  const dtype = e.dtype;
  const tensor = `tensor ${excerpt(name)}`;
  if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_BYTES, dtype)) {
    throw new ModelLoadError(`${label}: ${tensor} has unsupported dtype ${excerpt(dtype)}; supported: F32, F16, BF16`);
  }
  const shape = e.shape;
  if (!Array.isArray(shape) || !shape.every((n) => Number.isSafeInteger(n) && n >= 0)) {
    throw new ModelLoadError(`${label}: ${tensor} has an invalid shape ${excerpt(shape)}`);
  }
  const offsets = e.data_offsets;
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((n) => Number.isSafeInteger(n) && n >= 0) ||
    offsets[0] > offsets[1]
  ) {
    throw new ModelLoadError(`${label}: ${tensor} has invalid data_offsets ${excerpt(offsets)}`);
  }
  const byteLength = shape.reduce((a: number, b: number) => a * b, 1) * DTYPE_BYTES[dtype as DType];
  if (offsets[1] - offsets[0] !== byteLength) {
    throw new ModelLoadError(
      `${label}: ${tensor} data_offsets ${JSON.stringify(offsets)} span ${offsets[1] - offsets[0]} bytes, but ${dtype} ${excerpt(shape)} needs ${byteLength}`,
    );
  }
  return { name, dtype: dtype as DType, shape: shape as number[], file, offset: dataStart + offsets[0], byteLength };
}

/** No two tensors may share bytes, and the file must hold every tensor's bytes. */
function checkLayout(tensors: TensorRef[], fileSize: number, label: string): void {
  // Empty tensors hold no bytes, so they overlap nothing.
  const sorted = tensors.filter((t) => t.byteLength > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    if (prev.offset + prev.byteLength > sorted[i].offset) {
      throw new ModelLoadError(`${label}: tensors ${excerpt(prev.name)} and ${excerpt(sorted[i].name)} overlap`);
    }
  }
  for (const t of sorted) {
    if (t.offset + t.byteLength > fileSize) {
      throw new ModelLoadError(
        `${label}: truncated: tensor ${excerpt(t.name)} needs bytes ${t.offset}..${t.offset + t.byteLength} but the file has ${fileSize} bytes`,
      );
    }
  }
}

function readWeightMap(indexFile: string): Record<string, string> {
  const label = path.basename(indexFile);
  let index: { weight_map?: unknown };
  try {
    index = parseJson(readRegularFile(indexFile, MAX_INDEX_BYTES).toString('utf8')) as { weight_map?: unknown };
  } catch (err) {
    if (err instanceof FileReadError) throw new ModelLoadError(`${label}: ${err.message}`);
    throw new ModelLoadError(`${label}: not valid JSON (${(err as Error).message})`);
  }
  const map = index?.weight_map;
  if (typeof map !== 'object' || map === null || !Object.values(map).every((v) => typeof v === 'string')) {
    throw new ModelLoadError(`${label}: field "weight_map" must map tensor names to shard file names`);
  }
  return map as Record<string, string>;
}

function openOrFail(file: string, label: string, maxBytes: number) {
  try {
    return openRegularFile(file, maxBytes);
  } catch (err) {
    throw new ModelLoadError(`${label}: ${(err as Error).message}`);
  }
}

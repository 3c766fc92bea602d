// The frozen weights as one file in a cache folder, float32 or with the linear
// layers quantized (src/engine/quantize.ts), one folder per model and
// quantization. onnxruntime memory-maps it as the external data of every graph,
// so the weights are converted once per model, read from disk by the OS, and
// never held in a JavaScript buffer.
// Several processes (VS Code windows, the CLI) share the cache: a process marks the
// folders it uses with a lease named by its pid, and only folders no other live process
// uses are removed.

import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { nbitsEntries, WeightIndex } from '../../kernels/llama';
import { dequantize as decodeGgml, ggmlByteLength } from '../model/ggml';
import { expectedWeights, readBytes } from '../model/weights';
import type { BaseModel, GgmlType } from '../model/types';
import { processAlive, sweepTemporaries, writeFileAtomic } from '../util/atomic';
import { hasOffsets, isQuantType, mapBlocks, mappedBlockSize } from './ggml_blocks';
import {
  DEFAULT_BLOCK_SIZE,
  Quantization,
  quantizedSizes,
  quantizeRows,
  quantizeRowsTransposed,
  QUANTIZER_VERSION,
  RowSource,
  rowsOf,
  tensorStorage,
  TensorStorage,
} from './quantize';

/** The file name the graphs' external-data entries point at, relative to their folder. */
export const WEIGHTS_FILE = 'weights.bin';

/** Page-aligned, so that every tensor can be mapped in place. */
const ALIGN = 4096;

export interface WeightsFile {
  /** Folder holding weights.bin; graph files are written beside it. */
  dir: string;
  index: WeightIndex;
}

/** How the linear layers are stored; f32 when absent. */
export interface StorageOptions {
  quantization?: Quantization;
  /** Weights per quantisation block (default DEFAULT_BLOCK_SIZE). */
  blockSize?: number;
}

/**
 * MatMulNBits' accuracy_level. 4 (int8 activations, per block) is about twice as
 * fast as 0 on this CPU at a loss of quality well inside the q8/q4 tolerances
 * (measured: test/engine/quantized.test.ts, `npm run bench`).
 */
const ACCURACY_LEVEL = 4;

/** `ALIGNER_CACHE_DIR`, else `$XDG_CACHE_HOME/aligner`, else `~/.cache/aligner`. */
export function defaultCacheDir(): string {
  if (process.env.ALIGNER_CACHE_DIR) return process.env.ALIGNER_CACHE_DIR;
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'aligner');
}

export function weightsFile(model: BaseModel, cacheDir = defaultCacheDir(), storage: StorageOptions = {}): WeightsFile {
  const quantization = storage.quantization ?? 'f32';
  const blockSize = storage.blockSize ?? DEFAULT_BLOCK_SIZE;
  const layout = layoutOf(model, quantization, blockSize);
  const dir = path.join(cacheDir, 'weights', cacheKey(model, quantization, blockSize));
  const file = path.join(dir, WEIGHTS_FILE);
  fs.mkdirSync(dir, { recursive: true });
  takeLease(dir);
  sweepTemporaries(dir);
  // The file is renamed into place only once complete, so the right size means a finished conversion.
  const record: SourceRecord = { source: path.resolve(model.source), files: sourceStamp(model), quantization, blockSize };
  if (!fs.existsSync(file) || fs.statSync(file).size !== layout.size) {
    writeFileAtomic(file, tensorChunks(model, layout, blockSize));
    writeFileAtomic(path.join(dir, SOURCE_FILE), JSON.stringify(record));
  }
  // Every time, not only after a conversion: a copy another process used may have been released since.
  removeStaleCopies(path.dirname(dir), dir, record);
  const nbits = quantization === 'f32' ? undefined : { accuracyLevel: ACCURACY_LEVEL };
  return { dir, index: indexOf(model, layout.entries, nbits) };
}

const SOURCE_FILE = 'source.json';
/** Folder of a cache folder's leases: one empty file per process using it, named by its pid. */
const LEASES = 'in-use';

function takeLease(dir: string): void {
  fs.mkdirSync(path.join(dir, LEASES), { recursive: true });
  fs.writeFileSync(path.join(dir, LEASES, String(process.pid)), '');
}

/**
 * Whether another live process holds a lease on `dir`; leases of dead processes are removed.
 * This process's own lease does not count: it replaces a version of the model it used before.
 */
function inUse(dir: string): boolean {
  let names: string[];
  try {
    names = fs.readdirSync(path.join(dir, LEASES));
  } catch {
    return false;
  }
  let used = false;
  for (const name of names) {
    if (Number(name) === process.pid) continue;
    if (processAlive(Number(name))) used = true;
    else fs.rmSync(path.join(dir, LEASES, name), { force: true });
  }
  return used;
}

interface SourceRecord {
  source: string;
  /** Hash of the source weight files' paths, sizes and modification times. */
  files: string;
  quantization: Quantization;
  blockSize: number;
}

/**
 * Earlier conversions of the same model folder to the same storage, made before its
 * files changed, would only fill the disk. Copies of unchanged files stay: they
 * differ by the code that wrote them, and another process (another version of
 * the extension, the CLI) may be using them right now.
 */
function removeStaleCopies(root: string, keep: string, record: SourceRecord): void {
  for (const name of fs.readdirSync(root)) {
    const dir = path.join(root, name);
    if (dir === keep) continue;
    try {
      const recorded: Partial<SourceRecord> = JSON.parse(fs.readFileSync(path.join(dir, SOURCE_FILE), 'utf8'));
      const sameStorage =
        recorded.source === record.source &&
        (recorded.quantization ?? 'f32') === record.quantization &&
        (recorded.blockSize ?? DEFAULT_BLOCK_SIZE) === record.blockSize;
      if (sameStorage && recorded.files && recorded.files !== record.files && !inUse(dir)) fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // Not ours to judge: no readable record of where it came from.
    }
  }
}

interface Entry {
  shape: number[];
  offset: number;
  type: 'float' | 'uint8';
  /** Of a quantized matrix's data: weights per block. */
  blockSize?: number;
}

interface Layout {
  entries: Map<string, Entry>;
  /** Per source tensor, in file order: keep its float32 copy, its blocks (mapped or quantized), or both. */
  plan: PlannedTensor[];
  size: number;
}

/** One weight of the model and how the weights file serves it. */
export interface PlannedTensor extends TensorStorage {
  name: string;
  /** How the model's file stores it. */
  dtype: GgmlType;
  /** A float32 copy (unquantized weights, and the embedding table that a Gather reads). */
  float: boolean;
}

/** How each weight of `model` is served at `quantization`: what `aligner inspect-model` reports. */
export function storagePlan(model: BaseModel, quantization: Quantization, blockSize = DEFAULT_BLOCK_SIZE): PlannedTensor[] {
  return [...expectedWeights(model.config).keys()].map((name) => {
    const dtype = model.weights.tensors.get(name)!.dtype;
    const storage = tensorStorage(name, dtype, quantization, model.config, blockSize);
    // The embedding table is also gathered from, which needs its float32 rows.
    const float = storage.bits === undefined || name === 'model.embed_tokens.weight';
    return { name, dtype, float, ...storage };
  });
}

function layoutOf(model: BaseModel, quantization: Quantization, blockSize: number): Layout {
  const entries = new Map<string, Entry>();
  const plan = storagePlan(model, quantization, blockSize);
  const shapes = expectedWeights(model.config);
  let size = 0;
  const add = (name: string, shape: number[], type: Entry['type'], bytes: number, block?: number) => {
    entries.set(name, { shape, offset: size, type, blockSize: block });
    size += Math.ceil(bytes / ALIGN) * ALIGN;
  };
  for (const { name, dtype, float, bits, mapped } of plan) {
    const shape = shapes.get(name)!;
    if (float) add(name, shape, 'float', 4 * shape.reduce((a, b) => a * b, 1));
    if (bits === undefined) continue;
    const e = nbitsEntries(name);
    const [rows, cols] = shape;
    for (const [data, scales, zeros, n, k, symmetric, block] of [
      // Mapped blocks are symmetric: MatMulNBits' implicit zero point, no entry (offsets go to `mins`).
      [e.data, e.scales, e.zeroPoints, rows, cols, mapped, mapped ? mappedBlockSize(dtype) : blockSize],
      [e.transposedData, e.transposedScales, e.transposedZeroPoints, cols, rows, false, blockSize],
    ] as const) {
      const sizes = quantizedSizes(n, k, bits, block);
      add(data, [n, Math.ceil(k / block), (block * bits) / 8], 'uint8', sizes.data, block);
      add(scales, [sizes.scales / 4], 'float', sizes.scales);
      if (sizes.zeroPoints && !symmetric) add(zeros, [sizes.zeroPoints], 'uint8', sizes.zeroPoints);
    }
    if (mapped && hasOffsets(dtype)) add(e.mins, [cols / blockSize, rows], 'float', (4 * rows * cols) / blockSize);
  }
  return { entries, plan, size };
}

/** One tensor at a time, each piece zero-padded to its aligned slot: the model is never in memory whole. */
function* tensorChunks(model: BaseModel, layout: Layout, blockSize: number): Generator<Uint8Array> {
  let at = 0;
  function* put(name: string, bytes: ArrayBufferView): Generator<Uint8Array> {
    const { offset } = layout.entries.get(name)!;
    if (offset > at) yield new Uint8Array(offset - at);
    yield new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    at = offset + bytes.byteLength;
  }
  const shapes = expectedWeights(model.config);
  for (const { name, float, bits, mapped } of layout.plan) {
    if (float) yield* put(name, model.weights.f32(name));
    if (bits === undefined) continue;
    const [rows, cols] = shapes.get(name)!;
    const e = nbitsEntries(name);
    const read = rowSource(model, name, cols);
    const ref = model.weights.tensors.get(name)!;
    const q = mapped
      ? mapBlocks(readBytes(ref, 0, ref.byteLength), ref.dtype, rows, cols, bits)
      : quantizeRows(read, rows, cols, bits, blockSize);
    yield* put(e.data, q.data);
    yield* put(e.scales, q.scales);
    if (q.zeroPoints) yield* put(e.zeroPoints, q.zeroPoints);
    // Blocks run along W's rows here, across the stored ones: always quantized from float32.
    const t = quantizeRowsTransposed(read, rows, cols, bits, blockSize);
    yield* put(e.transposedData, t.data);
    yield* put(e.transposedScales, t.scales);
    if (t.zeroPoints) yield* put(e.transposedZeroPoints, t.zeroPoints);
    if (q.mins) yield* put(e.mins, q.mins);
  }
  if (layout.size > at) yield new Uint8Array(layout.size - at);
}

/**
 * A weight's rows as float32. GGUF block types are decoded a few rows at a time straight from
 * the file (their rows are whole blocks); other stores give the whole tensor once.
 */
function rowSource(model: BaseModel, name: string, cols: number): RowSource {
  const ref = model.weights.tensors.get(name)!;
  if (isQuantType(ref.dtype)) {
    const rowBytes = ggmlByteLength(ref.dtype, cols);
    return (start, count) => decodeGgml(readBytes(ref, start * rowBytes, count * rowBytes), ref.dtype);
  }
  let whole: Float32Array | undefined;
  return (start, count) => rowsOf((whole ??= model.weights.f32(name)), cols)(start, count);
}

/** Changes whenever the config, the storage or any source weight file changes (path, size or modification time). */
function cacheKey(model: BaseModel, quantization: Quantization, blockSize: number): string {
  const sources = sourceList(model);
  const storage = quantization === 'f32' ? {} : { quantization, blockSize, quantizer: QUANTIZER_VERSION };
  const json = JSON.stringify({ config: model.config, sources, layout: ALIGN, ...storage });
  const label = quantization === 'f32' ? '' : `-${quantization}`;
  return `${model.name.replace(/[^\w.-]/g, '_')}${label}-${createHash('sha256').update(json).digest('hex').slice(0, 16)}`;
}

/** Every source tensor with its file's path, size and modification time. */
function sourceList(model: BaseModel): unknown[] {
  return [...model.weights.tensors.values()].map((t) => {
    const st = fs.statSync(t.file);
    return [t.name, t.dtype, t.shape, path.resolve(t.file), t.offset, st.size, st.mtimeMs];
  });
}

function sourceStamp(model: BaseModel): string {
  return createHash('sha256')
    .update(JSON.stringify(sourceList(model)))
    .digest('hex')
    .slice(0, 16);
}

function indexOf(model: BaseModel, entries: Map<string, Entry>, nbits: WeightIndex['nbits']): WeightIndex {
  return {
    has: (name) => entries.has(name),
    get: (name) => {
      const e = entries.get(name);
      if (!e) throw new Error(`model ${model.name} has no weight "${name}"`);
      return e;
    },
    nbits,
  };
}

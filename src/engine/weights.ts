// The frozen weights as one float32 file in a cache folder. onnxruntime
// memory-maps it as the external data of every graph, so the weights are
// converted once per model, read from disk by the OS, and never held in a
// JavaScript buffer.

import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { WeightIndex } from '../../kernels/llama';
import { expectedWeights } from '../model/weights';
import type { BaseModel } from '../model/types';
import { writeFileAtomic } from '../util/atomic';

/** The file name the graphs' external-data entries point at, relative to their folder. */
export const WEIGHTS_FILE = 'weights.bin';

/** Page-aligned, so that every tensor can be mapped in place. */
const ALIGN = 4096;

export interface WeightsFile {
  /** Folder holding weights.bin; graph files are written beside it. */
  dir: string;
  index: WeightIndex;
}

/** `ALIGNER_CACHE_DIR`, else `$XDG_CACHE_HOME/aligner`, else `~/.cache/aligner`. */
export function defaultCacheDir(): string {
  if (process.env.ALIGNER_CACHE_DIR) return process.env.ALIGNER_CACHE_DIR;
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'aligner');
}

export function weightsFile(model: BaseModel, cacheDir = defaultCacheDir()): WeightsFile {
  const layout = layoutOf(model);
  const dir = path.join(cacheDir, 'weights', cacheKey(model));
  const file = path.join(dir, WEIGHTS_FILE);
  // The file is renamed into place only once complete, so the right size means a finished conversion.
  if (!fs.existsSync(file) || fs.statSync(file).size !== layout.size) {
    fs.mkdirSync(dir, { recursive: true });
    writeFileAtomic(file, tensorChunks(model, layout));
    writeFileAtomic(path.join(dir, SOURCE_FILE), JSON.stringify({ source: path.resolve(model.source) }));
    removeStaleCopies(path.dirname(dir), dir, model.source);
  }
  return { dir, index: indexOf(model, layout.entries) };
}

const SOURCE_FILE = 'source.json';

/** Earlier conversions of the same model folder (it changed since) would only fill the disk. */
function removeStaleCopies(root: string, keep: string, source: string): void {
  for (const name of fs.readdirSync(root)) {
    const dir = path.join(root, name);
    if (dir === keep) continue;
    try {
      const recorded = JSON.parse(fs.readFileSync(path.join(dir, SOURCE_FILE), 'utf8')).source;
      if (recorded === path.resolve(source)) fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // Not ours to judge: no readable record of where it came from.
    }
  }
}

interface Layout {
  entries: Map<string, { shape: number[]; offset: number }>;
  size: number;
}

function layoutOf(model: BaseModel): Layout {
  const entries = new Map<string, { shape: number[]; offset: number }>();
  let size = 0;
  for (const [name, shape] of expectedWeights(model.config)) {
    entries.set(name, { shape, offset: size });
    size += Math.ceil((4 * shape.reduce((a, b) => a * b, 1)) / ALIGN) * ALIGN;
  }
  return { entries, size };
}

/** One tensor at a time, zero-padded to its aligned slot: the model is never in memory whole. */
function* tensorChunks(model: BaseModel, layout: Layout): Generator<Uint8Array> {
  let at = 0;
  for (const [name, { offset }] of layout.entries) {
    if (offset > at) yield new Uint8Array(offset - at);
    const data = model.weights.f32(name);
    yield new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    at = offset + data.byteLength;
  }
  if (layout.size > at) yield new Uint8Array(layout.size - at);
}

/** Changes whenever the config or any source weight file changes (path, size or modification time). */
function cacheKey(model: BaseModel): string {
  const sources = [...model.weights.tensors.values()].map((t) => {
    const st = fs.statSync(t.file);
    return [t.name, t.dtype, t.shape, path.resolve(t.file), t.offset, st.size, st.mtimeMs];
  });
  const json = JSON.stringify({ config: model.config, sources, layout: ALIGN });
  return `${model.name.replace(/[^\w.-]/g, '_')}-${createHash('sha256').update(json).digest('hex').slice(0, 16)}`;
}

function indexOf(model: BaseModel, entries: Layout['entries']): WeightIndex {
  return {
    has: (name) => entries.has(name),
    get: (name) => {
      const e = entries.get(name);
      if (!e) throw new Error(`model ${model.name} has no weight "${name}"`);
      return e;
    },
  };
}

// The models an OpenAI-compatible server offers: the base model alone, and the
// base model with each adapter that fits it, named `base+adapter`. Adapter
// folders are rescanned on each lookup, so adapters trained while the server runs
// appear at once; an unchanged file keeps its weights object (and so the engine's
// cached K_p/V_p).

import * as fs from 'fs';
import * as path from 'path';
import { readAdapter } from '../adapter/file';
import { checkAdapterFits } from '../adapter/fit';
import type { AdapterWeights } from '../adapter/types';
import type { BaseModel } from '../model/types';

export interface ServedModel {
  /** `stories260K` or `stories260K+shout`. */
  id: string;
  adapter: AdapterWeights | null;
  /** Seconds since the epoch: the adapter file's modification time (the server's start for the base). */
  created: number;
}

interface Loaded {
  mtimeMs: number;
  size: number;
  adapter: AdapterWeights | null;
}

/** A served model's id: the base model's name, with `+adapter` for an adapter. */
export function servedModelId(base: string, adapter?: string): string {
  return adapter === undefined ? base : `${base}+${adapter}`;
}

export class ServedModels {
  private readonly cache = new Map<string, Loaded>();
  private readonly started = Math.floor(Date.now() / 1000);

  /**
   * `files` must fit the model (checked now, throws naming the file); adapters in
   * `dirs` that do not fit are left out and reported once through `warn`.
   */
  constructor(
    private readonly model: BaseModel,
    private readonly files: string[],
    private readonly dirs: string[],
    private readonly warn: (message: string) => void = () => {},
  ) {
    for (const f of files) this.load(f, true);
  }

  list(): ServedModel[] {
    const out: ServedModel[] = [{ id: this.model.name, adapter: null, created: this.started }];
    const seen = new Set<string>([this.model.name]);
    for (const file of [...this.files, ...this.dirs.flatMap(adapterFiles)]) {
      const id = servedModelId(this.model.name, path.basename(file, '.safetensors'));
      if (seen.has(id)) continue;
      const adapter = this.load(file, this.files.includes(file));
      if (!adapter) continue;
      seen.add(id);
      out.push({ id, adapter, created: Math.floor(this.cache.get(file)!.mtimeMs / 1000) });
    }
    return out;
  }

  /** The model named `id`, looking only at the files that could hold it. */
  find(id: string): ServedModel | undefined {
    if (id === this.model.name) return { id, adapter: null, created: this.started };
    const prefix = servedModelId(this.model.name, '');
    const name = id.startsWith(prefix) ? id.slice(prefix.length) : '';
    // A name is a file name, never a path: "base+../x" must not reach outside the folders.
    if (!name || /[\\/]/.test(name) || name.startsWith('.')) return undefined;
    const file = `${name}.safetensors`;
    const candidates = [...this.files.filter((f) => path.basename(f) === file), ...this.dirs.map((d) => path.join(d, file))];
    for (const f of candidates) {
      const adapter = this.load(f, false);
      if (adapter) return { id, adapter, created: Math.floor(this.cache.get(f)!.mtimeMs / 1000) };
    }
    return undefined;
  }

  /** The adapter in `file`, reread only when the file changed; null when it does not fit (or vanished). */
  private load(file: string, strict: boolean): AdapterWeights | null {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(file);
    } catch {
      if (strict) throw new Error(`adapter "${file}": no such file`);
      return null;
    }
    const cached = this.cache.get(file);
    if (cached && cached.mtimeMs === stat.mtimeMs && cached.size === stat.size) return cached.adapter;
    let adapter: AdapterWeights | null = null;
    try {
      const a = readAdapter(file);
      checkAdapterFits(a, this.model, file);
      adapter = a;
    } catch (err) {
      if (strict) throw err;
      this.warn(`skipping ${(err as Error).message}`);
    }
    this.cache.set(file, { mtimeMs: stat.mtimeMs, size: stat.size, adapter });
    return adapter;
  }
}

function adapterFiles(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => n.endsWith('.safetensors'))
    .sort()
    .map((n) => path.join(dir, n));
}

// The adapters the compute thread has in memory, by path: read once, checked against
// the loaded model, and read again when the file changes on disk (a retrained adapter).

import * as fs from 'fs';
import { readAdapter } from '../adapter/file';
import { checkAdapterFits } from '../adapter/fit';
import type { AdapterWeights } from '../adapter/types';
import type { BaseModel } from '../model/types';

export class AdapterCache {
  private readonly entries = new Map<string, { mtimeMs: number; size: number; weights: AdapterWeights }>();

  /** The adapter at `file` for `model`; null for the base model. Throws on a missing or unfit file. */
  get(file: string | null, model: BaseModel): AdapterWeights | null {
    if (!file) return null;
    let st: fs.Stats;
    try {
      st = fs.statSync(file);
    } catch {
      throw new AdapterNotFoundError(`Adapter file not found: ${file}`);
    }
    const cached = this.entries.get(file);
    if (cached && cached.mtimeMs === st.mtimeMs && cached.size === st.size) return cached.weights;
    const loaded = readAdapter(file);
    checkAdapterFits(loaded, model, file);
    const weights: AdapterWeights = { prefix: loaded.prefix, gates: loaded.gates, tokens: loaded.tokens, startLayer: loaded.startLayer };
    this.entries.set(file, { mtimeMs: st.mtimeMs, size: st.size, weights });
    return weights;
  }

  forget(file: string): void {
    this.entries.delete(file);
  }

  clear(): void {
    this.entries.clear();
  }
}

export class AdapterNotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AdapterNotFoundError';
  }
}

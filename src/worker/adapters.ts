// Adapter library operations that only read file headers (list, inspect, import,
// delete); they run on the JSON-RPC thread and never wait for the compute thread.

import * as fs from 'fs';
import * as path from 'path';
import { ResponseError } from 'vscode-languageserver/node';
import { readSafetensors } from '../model/safetensors';
import type { BaseModel } from '../model/types';
import { isValidAdapterName } from '../adapter/names';
import { ErrorCodes, type AdapterImportParams, type AdapterInfo, type ModelInfo } from '../protocol';

export interface ModelShape {
  name: string;
  fingerprint: string;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
}

export function shapeOf(m: BaseModel | ModelInfo | ModelShape | null): ModelShape | null {
  if (!m) return null;
  if ('config' in m) {
    const c = m.config;
    return { name: m.name, fingerprint: m.fingerprint, hiddenSize: c.hiddenSize, numLayers: c.numLayers, numHeads: c.numHeads };
  }
  return { name: m.name, fingerprint: m.fingerprint, hiddenSize: m.hiddenSize, numLayers: m.numLayers, numHeads: m.numHeads };
}

/** Reads an adapter's header and says whether it fits `model` (and why not). Throws on a file that is not an adapter. */
export function adapterInfo(file: string, model: BaseModel | ModelInfo | ModelShape | null): AdapterInfo {
  const abs = path.resolve(file);
  const { tensors, metadata } = readSafetensors(abs);
  const prefix = tensors.find((t) => t.name === 'prefix');
  const gates = tensors.find((t) => t.name === 'gates');
  if (!prefix || !gates || prefix.shape.length !== 2 || gates.shape.length !== 2) {
    throw new Error(`${path.basename(abs)} is not an Aligner adapter (it needs tensors "prefix" [N, d] and "gates" [L - s, H])`);
  }
  const tokens = prefix.shape[0];
  const startLayer = Number(metadata.start_layer ?? metadata.startLayer ?? NaN);
  const info: AdapterInfo = {
    name: path.basename(abs).replace(/\.safetensors$/i, ''),
    path: abs,
    bytes: fs.statSync(abs).size,
    tokens,
    startLayer: Number.isFinite(startLayer) ? startLayer : -1,
    method: metadata.method ?? 'sft',
    baseModel: metadata.base_model ?? '',
    baseFingerprint: metadata.base_fingerprint ?? '',
    compatible: false,
    metadata,
  };
  const m = shapeOf(model);
  if (!m) {
    info.problem = 'No base model is loaded.';
  } else if (metadata.format && !metadata.format.startsWith('aligner/')) {
    info.problem = `${info.name}: unknown adapter format "${metadata.format}"`;
  } else if (info.baseFingerprint !== m.fingerprint) {
    info.problem =
      `Adapter "${info.name}" was trained for another base model ` +
      `(${info.baseModel || 'unknown'}, fingerprint ${info.baseFingerprint || 'missing'}); ` +
      `the loaded model is ${m.name} (fingerprint ${m.fingerprint}).`;
  } else if (prefix.shape[1] !== m.hiddenSize || gates.shape[1] !== m.numHeads || gates.shape[0] + info.startLayer !== m.numLayers) {
    info.problem = `Adapter "${info.name}" has shapes prefix [${prefix.shape}] gates [${gates.shape}] that do not fit ${m.name}.`;
  } else {
    info.compatible = true;
  }
  return info;
}

/** Every readable adapter in the given folders (unreadable files are reported with a problem). */
export function listAdapters(dirs: string[], model: ModelInfo | null): AdapterInfo[] {
  const out: AdapterInfo[] = [];
  const seen = new Set<string>();
  for (const dir of dirs) {
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    for (const n of names.sort()) {
      if (!n.toLowerCase().endsWith('.safetensors')) continue;
      const file = path.resolve(dir, n);
      if (seen.has(file)) continue;
      seen.add(file);
      try {
        out.push(adapterInfo(file, model));
      } catch (err) {
        out.push({
          name: n.replace(/\.safetensors$/i, ''),
          path: file,
          bytes: 0,
          tokens: 0,
          startLayer: -1,
          method: '',
          baseModel: '',
          baseFingerprint: '',
          compatible: false,
          problem: (err as Error).message,
          metadata: {},
        });
      }
    }
  }
  return out;
}


/** adapterInfo with its failures as InvalidInput errors for the client. */
export function inspectAdapter(file: string, model: ModelInfo | null): AdapterInfo {
  try {
    return adapterInfo(file, model);
  } catch (err) {
    throw new ResponseError(ErrorCodes.InvalidInput, (err as Error).message);
  }
}

/** Copies a compatible adapter into a library folder under `name` (its own name by default). */
export function importAdapter(params: AdapterImportParams, model: ModelInfo | null): AdapterInfo {
  const info = inspectAdapter(params.path, model);
  if (!info.compatible) throw new ResponseError(ErrorCodes.AdapterMismatch, info.problem ?? 'The adapter does not fit the loaded model');
  const name = params.name ?? info.name;
  if (!isValidAdapterName(name)) throw new ResponseError(ErrorCodes.InvalidInput, `Invalid adapter name "${name}"`);
  const dest = path.join(path.resolve(params.toDir), `${name}.safetensors`);
  if (dest === info.path) return info;
  if (fs.existsSync(dest) && !params.overwrite) throw new ResponseError(ErrorCodes.InvalidInput, `An adapter named "${name}" already exists in ${params.toDir}`);
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const tmp = `${dest}.${process.pid}.tmp`;
  fs.copyFileSync(info.path, tmp);
  fs.renameSync(tmp, dest);
  return adapterInfo(dest, model);
}

/** Deletes an adapter file; refuses anything that is not an adapter. */
export function deleteAdapter(file: string): { deleted: boolean } {
  if (!file.toLowerCase().endsWith('.safetensors')) throw new ResponseError(ErrorCodes.InvalidInput, 'Only .safetensors adapter files can be deleted');
  try {
    adapterInfo(file, null);
  } catch (err) {
    if (!fs.existsSync(file)) return { deleted: false };
    throw new ResponseError(ErrorCodes.InvalidInput, (err as Error).message);
  }
  fs.rmSync(file, { force: true });
  return { deleted: true };
}

// Adapter library operations that only read file headers (list, inspect, import,
// delete, history, revert); they run on the JSON-RPC thread and never wait for the compute thread.

import * as fs from 'fs';
import * as path from 'path';
import { ResponseError } from 'vscode-languageserver/node';
import { ADAPTER_NAME_RULE, isValidAdapterName } from '../adapter/names';
import { AdapterError } from '../adapter/errors';
import { readAdapterHeader } from '../adapter/file';
import { checkVersion, keptAt, listVersions, revertTo } from '../adapter/history';
import { fitProblem } from '../adapter/fit';
import type { AdapterMetadata } from '../adapter/types';
import type { BaseModel } from '../model/types';
import {
  ErrorCodes,
  type AdapterImportParams,
  type AdapterInfo,
  type AdapterRevertParams,
  type AdapterVersion,
  type ModelInfo,
} from '../protocol';
import { sweepTemporaries, writeFileAtomic } from '../util/atomic';

export interface ModelShape {
  name: string;
  fingerprint: string;
  legacyFingerprint?: string;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
}

export function shapeOf(m: BaseModel | ModelInfo | ModelShape | null): ModelShape | null {
  if (!m) return null;
  if ('config' in m) {
    const c = m.config;
    return { ...fingerprints(m), hiddenSize: c.hiddenSize, numLayers: c.numLayers, numHeads: c.numHeads };
  }
  return { ...fingerprints(m), hiddenSize: m.hiddenSize, numLayers: m.numLayers, numHeads: m.numHeads };
}

function fingerprints(m: {
  name: string;
  fingerprint: string;
  legacyFingerprint?: string;
}): Pick<ModelShape, 'name' | 'fingerprint' | 'legacyFingerprint'> {
  return { name: m.name, fingerprint: m.fingerprint, legacyFingerprint: m.legacyFingerprint };
}

/**
 * Reads an adapter's header and says whether it fits `model` (and why not), by the rule loading
 * uses (adapter/fit.ts). Throws an AdapterError on a file that is not a valid adapter.
 */
export function adapterInfo(file: string, model: BaseModel | ModelInfo | ModelShape | null): AdapterInfo {
  const abs = path.resolve(file);
  const { metadata, layout } = readAdapterHeader(abs);
  const name = path.basename(abs).replace(/\.safetensors$/i, '');
  const m = shapeOf(model);
  const problem = m ? fitProblem(layout, m, `Adapter "${name}"`) : 'No base model is loaded.';
  return {
    name,
    path: abs,
    bytes: fs.statSync(abs).size,
    tokens: metadata.tokens,
    startLayer: metadata.start_layer,
    method: metadata.method,
    baseModel: metadata.base_model,
    baseFingerprint: metadata.base_fingerprint,
    compatible: problem === null,
    ...(problem === null ? {} : { problem }),
    metadata: rawMetadata(metadata),
  };
}

/** The file's metadata as the strings it stores, for display. */
function rawMetadata(m: AdapterMetadata): Record<string, string> {
  const out: Record<string, string> = { ...m.extra };
  for (const [key, value] of Object.entries(m)) if (key !== 'extra' && value !== null) out[key] = String(value);
  return out;
}

/** Every readable adapter in the given folders (unreadable files are reported with a problem). */
export function listAdapters(dirs: string[], model: ModelInfo | ModelShape | null): AdapterInfo[] {
  const out: AdapterInfo[] = [];
  const seen = new Set<string>();
  for (const dir of dirs) {
    sweepTemporaries(dir);
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
      out.push(readableInfo(file, model));
    }
  }
  return out;
}

/** adapterInfo, or for a file that cannot be read an entry whose problem says why. */
function readableInfo(file: string, model: ModelInfo | ModelShape | null): AdapterInfo {
  try {
    return adapterInfo(file, model);
  } catch (err) {
    return {
      name: path.basename(file).replace(/\.safetensors$/i, ''),
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
    };
  }
}

function version(file: string, model: ModelInfo | null): AdapterVersion {
  return { path: file, kept: keptAt(file)!, info: readableInfo(file, model) };
}

/** The earlier versions of an adapter, newest first. */
export function adapterHistory(file: string, model: ModelInfo | null): AdapterVersion[] {
  return listVersions(file).map((v) => version(v, model));
}

/** Puts a version of an adapter back, after keeping the current content as a version; refuses a version that does not fit the loaded model. */
export function revertAdapter(params: AdapterRevertParams, model: ModelInfo | null): { adapter: AdapterInfo; kept: AdapterVersion } {
  const file = path.resolve(params.path);
  let kept: string;
  try {
    const target = adapterInfo(checkVersion(file, params.version), model);
    if (model && !target.compatible)
      throw new ResponseError(ErrorCodes.AdapterMismatch, target.problem ?? 'The version does not fit the loaded model');
    kept = revertTo(file, params.version);
  } catch (err) {
    if (err instanceof ResponseError) throw err;
    throw new ResponseError(err instanceof AdapterError ? ErrorCodes.InvalidInput : ErrorCodes.Internal, (err as Error).message);
  }
  return { adapter: adapterInfo(file, model), kept: version(kept, model) };
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
  if (!isValidAdapterName(name))
    throw new ResponseError(ErrorCodes.InvalidInput, `Invalid adapter name "${String(name).slice(0, 100)}": use ${ADAPTER_NAME_RULE}`);
  const dest = path.join(path.resolve(params.toDir), `${name}.safetensors`);
  if (dest === info.path) return info;
  if (fs.existsSync(dest) && !params.overwrite)
    throw new ResponseError(ErrorCodes.InvalidInput, `An adapter named "${name}" already exists in ${params.toDir}`);
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  sweepTemporaries(path.dirname(dest));
  try {
    writeFileAtomic(dest, fs.readFileSync(info.path));
  } catch (err) {
    throw new ResponseError(ErrorCodes.Internal, (err as Error).message);
  }
  return adapterInfo(dest, model);
}

/** Deletes an adapter file; refuses anything that is not an adapter. */
export function deleteAdapter(file: string): { deleted: boolean } {
  if (!file.toLowerCase().endsWith('.safetensors'))
    throw new ResponseError(ErrorCodes.InvalidInput, 'Only .safetensors adapter files can be deleted');
  try {
    adapterInfo(file, null);
  } catch (err) {
    if (!fs.existsSync(file)) return { deleted: false };
    throw new ResponseError(ErrorCodes.InvalidInput, (err as Error).message);
  }
  fs.rmSync(file, { force: true });
  return { deleted: true };
}

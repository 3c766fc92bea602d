import * as fs from 'fs';
import * as path from 'path';
import { ModelLoadError } from '../model/errors';
import { AdapterError } from './errors';
import type { ModelConfig } from '../model/types';
import { readSafetensorsBuffer, writeSafetensors } from '../model/safetensors';
import { ADAPTER_FORMAT, type AdapterFile, type AdapterMetadata, type AdapterSummary, type AdapterWeights } from './types';

/** Metadata keys with a typed meaning; `extra` may not reuse them. */
const TYPED_KEYS = ['format', 'base_model', 'base_fingerprint', 'tokens', 'start_layer', 'method', 'examples', 'epochs', 'train_loss', 'val_loss', 'date'];

/** The model dimensions an adapter's tensors are shaped by (a ModelConfig will do). */
export type AdapterShape = Pick<ModelConfig, 'hiddenSize' | 'numLayers' | 'numHeads'>;

/**
 * Writes an adapter as one safetensors file (`prefix` [N, d], `gates` [L - s, H]) with its metadata,
 * atomically. `shape` gives d, L and H, which the flat arrays alone do not.
 */
export function writeAdapter(file: string, adapter: AdapterWeights, meta: AdapterSummary, shape: AdapterShape): void {
  const label = path.basename(file);
  const gateRows = shape.numLayers - adapter.startLayer;
  if (adapter.prefix.length !== adapter.tokens * shape.hiddenSize || gateRows <= 0 || adapter.gates.length !== gateRows * shape.numHeads) {
    throw new Error(
      `${label}: adapter arrays (prefix ${adapter.prefix.length}, gates ${adapter.gates.length} values) do not fit ` +
        `tokens ${adapter.tokens}, start layer ${adapter.startLayer} on a model with d=${shape.hiddenSize}, L=${shape.numLayers}, H=${shape.numHeads}`,
    );
  }
  const clash = Object.keys(meta.extra).find((k) => TYPED_KEYS.includes(k));
  if (clash) throw new Error(`${label}: extra metadata field "${clash}" clashes with a standard field`);
  const metadata: Record<string, string> = {
    ...meta.extra,
    format: ADAPTER_FORMAT,
    base_model: meta.base_model,
    base_fingerprint: meta.base_fingerprint,
    tokens: String(adapter.tokens),
    start_layer: String(adapter.startLayer),
    method: meta.method,
    examples: String(meta.examples),
    epochs: String(meta.epochs),
    date: meta.date,
  };
  if (meta.train_loss !== null) metadata.train_loss = String(meta.train_loss);
  if (meta.val_loss !== null) metadata.val_loss = String(meta.val_loss);
  writeSafetensors(file, [
    { name: 'prefix', dtype: 'F32', shape: [adapter.tokens, shape.hiddenSize], data: adapter.prefix },
    { name: 'gates', dtype: 'F32', shape: [gateRows, shape.numHeads], data: adapter.gates },
  ], metadata);
}

/** The safetensors container, with its format errors reported as adapter errors. */
function parseSafetensors(buf: Buffer, label: string) {
  try {
    return readSafetensorsBuffer(buf, `adapter "${label}"`);
  } catch (err) {
    if (err instanceof ModelLoadError) throw new AdapterError(err.message);
    throw err;
  }
}

/** Reads and validates an adapter file; does not check it against a model (see checkAdapterFits). */
export function readAdapter(file: string): AdapterFile {
  const label = path.basename(file);
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (err) {
    throw new AdapterError(`adapter "${label}": cannot read (${(err as NodeJS.ErrnoException).code})`);
  }
  const { tensors, metadata: raw } = parseSafetensors(buf, label);
  const metadata = parseMetadata(raw, label);
  const prefix = tensors.get('prefix');
  const gates = tensors.get('gates');
  if (!prefix || !gates) throw new AdapterError(`adapter "${label}": missing tensor "${prefix ? 'gates' : 'prefix'}"`);
  if (prefix.shape.length !== 2 || prefix.shape[0] !== metadata.tokens || prefix.shape[1] === 0) {
    throw new AdapterError(`adapter "${label}": tensor "prefix" has shape [${prefix.shape}], expected [${metadata.tokens}, hidden size]`);
  }
  if (gates.shape.length !== 2 || gates.shape[0] === 0 || gates.shape[1] === 0) {
    throw new AdapterError(`adapter "${label}": tensor "gates" has shape [${gates.shape}], expected [layers - ${metadata.start_layer}, heads]`);
  }
  checkFinite(prefix.data, 'prefix', label);
  checkFinite(gates.data, 'gates', label);
  return { prefix: prefix.data, gates: gates.data, tokens: metadata.tokens, startLayer: metadata.start_layer, metadata };
}

function parseMetadata(raw: Record<string, string>, label: string): AdapterMetadata {
  const field = (key: string): string => {
    const v = raw[key];
    if (v === undefined || v === '') throw new AdapterError(`adapter "${label}": metadata field "${key}" is missing`);
    return v;
  };
  const int = (key: string, min: number): number => {
    const v = Number(field(key));
    if (!Number.isInteger(v) || v < min) throw new AdapterError(`adapter "${label}": metadata field "${key}" must be an integer >= ${min}, found "${raw[key]}"`);
    return v;
  };
  const loss = (key: string): number | null => {
    if (raw[key] === undefined) return null;
    const v = Number(raw[key]);
    if (!Number.isFinite(v)) throw new AdapterError(`adapter "${label}": metadata field "${key}" must be a number, found "${raw[key]}"`);
    return v;
  };
  if (raw.format !== ADAPTER_FORMAT) {
    throw new AdapterError(`adapter "${label}": metadata field "format" is ${JSON.stringify(raw.format ?? null)}, expected "${ADAPTER_FORMAT}"`);
  }
  const method = field('method');
  if (method !== 'sft' && method !== 'dpo') throw new AdapterError(`adapter "${label}": metadata field "method" must be "sft" or "dpo", found "${method}"`);
  const extra = Object.fromEntries(Object.entries(raw).filter(([k]) => !TYPED_KEYS.includes(k)));
  return {
    format: ADAPTER_FORMAT,
    base_model: field('base_model'),
    base_fingerprint: field('base_fingerprint'),
    tokens: int('tokens', 1),
    start_layer: int('start_layer', 0),
    method,
    examples: int('examples', 0),
    epochs: int('epochs', 0),
    train_loss: loss('train_loss'),
    val_loss: loss('val_loss'),
    date: field('date'),
    extra,
  };
}

function checkFinite(data: Float32Array, name: string, label: string): void {
  const i = data.findIndex((v) => !Number.isFinite(v));
  if (i >= 0) throw new AdapterError(`adapter "${label}": tensor "${name}" has a non-finite value (${data[i]}) at index ${i}`);
}

// Adapter files (SPEC §5): writing one, reading and validating one, or only its header for
// listing. Files come from users and repositories, so every read is bounded: regular files only,
// at most ADAPTER_LIMITS bytes, at most MAX_TOKENS prefix tokens, and short quotes in errors.

import * as path from 'path';
import { ModelLoadError } from '../model/errors';
import { AdapterError } from './errors';
import type { ModelConfig } from '../model/types';
import { readSafetensors, readSafetensorsBuffer, writeSafetensors, type SafetensorsLimits } from '../model/safetensors';
import { readRegularFile } from '../util/files';
import { excerpt } from '../util/json';
import {
  ADAPTER_FORMAT,
  MAX_TOKENS,
  type AdapterFile,
  type AdapterHeader,
  type AdapterMetadata,
  type AdapterSummary,
  type AdapterWeights,
} from './types';

/**
 * An adapter's header holds a few hundred bytes of metadata (256 KiB leaves room for long
 * descriptions); its tensors are at most 64 × d floats plus the gates (16 MiB at d = 65536).
 */
export const ADAPTER_LIMITS: SafetensorsLimits = { maxHeader: 256 * 1024, maxFile: 64 * 1024 * 1024 };

/** Metadata keys with a typed meaning; `extra` may not reuse them. */
const TYPED_KEYS = [
  'format',
  'base_model',
  'base_fingerprint',
  'quantization',
  'tokens',
  'start_layer',
  'method',
  'examples',
  'epochs',
  'train_loss',
  'val_loss',
  'date',
];

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
  if (meta.quantization) metadata.quantization = meta.quantization;
  if (meta.train_loss !== null) metadata.train_loss = String(meta.train_loss);
  if (meta.val_loss !== null) metadata.val_loss = String(meta.val_loss);
  writeSafetensors(
    file,
    [
      { name: 'prefix', dtype: 'F32', shape: [adapter.tokens, shape.hiddenSize], data: adapter.prefix },
      { name: 'gates', dtype: 'F32', shape: [gateRows, shape.numHeads], data: adapter.gates },
    ],
    metadata,
  );
}

/** The safetensors container, with its format and file errors reported as adapter errors. */
function asAdapterError<T>(read: () => T): T {
  try {
    return read();
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
    buf = readRegularFile(file, ADAPTER_LIMITS.maxFile);
  } catch (err) {
    throw new AdapterError(`adapter "${label}": ${(err as Error).message}`);
  }
  const { tensors, metadata: raw } = asAdapterError(() => readSafetensorsBuffer(buf, `adapter "${label}"`, ADAPTER_LIMITS));
  const header = validateHeader(new Map([...tensors].map(([name, t]) => [name, t.shape])), raw, label);
  const prefix = tensors.get('prefix')!.data;
  const gates = tensors.get('gates')!.data;
  checkFinite(prefix, 'prefix', label);
  checkFinite(gates, 'gates', label);
  return { prefix, gates, tokens: header.metadata.tokens, startLayer: header.metadata.start_layer, ...header };
}

/** An adapter's validated metadata and tensor shapes, read from its header only (for listing). */
export function readAdapterHeader(file: string): AdapterHeader {
  const label = path.basename(file);
  const { tensors, metadata } = asAdapterError(() => readSafetensors(file, ADAPTER_LIMITS, `adapter "${label}"`));
  return validateHeader(new Map(tensors.map((t) => [t.name, t.shape])), metadata, label);
}

/** The checks every adapter file passes before anything is compared with a model. */
function validateHeader(shapes: Map<string, number[]>, raw: Record<string, string>, label: string): AdapterHeader {
  const metadata = parseMetadata(raw, label);
  const prefix = shapes.get('prefix');
  const gates = shapes.get('gates');
  if (!prefix || !gates) throw new AdapterError(`adapter "${label}": missing tensor "${prefix ? 'gates' : 'prefix'}"`);
  if (prefix.length !== 2 || prefix[0] !== metadata.tokens || prefix[1] === 0) {
    throw new AdapterError(`adapter "${label}": tensor "prefix" has shape ${excerpt(prefix)}, expected [${metadata.tokens}, hidden size]`);
  }
  if (gates.length !== 2 || gates[0] === 0 || gates[1] === 0) {
    throw new AdapterError(
      `adapter "${label}": tensor "gates" has shape ${excerpt(gates)}, expected [layers - ${metadata.start_layer}, heads]`,
    );
  }
  const layout = {
    tokens: metadata.tokens,
    startLayer: metadata.start_layer,
    prefixShape: prefix,
    gatesShape: gates,
    base: { model: metadata.base_model, fingerprint: metadata.base_fingerprint },
  };
  return { metadata, layout };
}

function parseMetadata(raw: Record<string, string>, label: string): AdapterMetadata {
  const field = (key: string): string => {
    const v = raw[key];
    if (v === undefined || v === '') throw new AdapterError(`adapter "${label}": metadata field "${key}" is missing`);
    return v;
  };
  const int = (key: string, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const v = Number(field(key));
    if (!Number.isSafeInteger(v) || v < min || v > max) {
      const range = max < Number.MAX_SAFE_INTEGER ? `from ${min} to ${max}` : `>= ${min}`;
      throw new AdapterError(`adapter "${label}": metadata field "${key}" must be an integer ${range}, found ${excerpt(raw[key])}`);
    }
    return v;
  };
  const loss = (key: string): number | null => {
    if (raw[key] === undefined) return null;
    const v = Number(raw[key]);
    if (!Number.isFinite(v))
      throw new AdapterError(`adapter "${label}": metadata field "${key}" must be a number, found ${excerpt(raw[key])}`);
    return v;
  };
  if (raw.format !== ADAPTER_FORMAT) {
    throw new AdapterError(`adapter "${label}": metadata field "format" is ${excerpt(raw.format ?? null)}, expected "${ADAPTER_FORMAT}"`);
  }
  const method = field('method');
  if (method !== 'sft' && method !== 'dpo')
    throw new AdapterError(`adapter "${label}": metadata field "method" must be "sft" or "dpo", found ${excerpt(method)}`);
  const extra = Object.fromEntries(Object.entries(raw).filter(([k]) => !TYPED_KEYS.includes(k)));
  return {
    format: ADAPTER_FORMAT,
    base_model: field('base_model'),
    base_fingerprint: field('base_fingerprint'),
    ...(raw.quantization ? { quantization: raw.quantization } : {}),
    tokens: int('tokens', 1, MAX_TOKENS),
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

// Adapter test helpers. Builds safetensors bytes by hand, the way other writers may: the header is NOT padded to a
// multiple of 8 unless asked, so tensor data can start at any offset. For hostile-file tests.

import type { AdapterSummary } from '../../src/adapter/types';

export interface RawTensor {
  name: string;
  shape: number[];
  values: number[] | Float32Array;
}

/** Valid safetensors bytes: 8-byte length, JSON header (+ `pad` spaces), F32 data in order. */
export function rawSafetensors(tensors: RawTensor[], metadata: Record<string, string> | null, pad = 0): Buffer {
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {};
  const data: Buffer[] = [];
  let offset = 0;
  for (const t of tensors) {
    const bytes = Buffer.from(new Float32Array(t.values).buffer);
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    data.push(bytes);
    offset += bytes.length;
  }
  return withHeader(JSON.stringify(header) + ' '.repeat(pad), Buffer.concat(data));
}

/** Any header text (valid or not) followed by `data`. */
export function withHeader(json: string, data: Buffer = Buffer.alloc(0)): Buffer {
  const text = Buffer.from(json, 'utf8');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(text.length));
  return Buffer.concat([length, text, data]);
}

/** Adapter metadata for a model of `fingerprint`, overridable field by field. */
export function adapterMeta(
  fingerprint: string,
  tokens: number,
  startLayer: number,
  more: Record<string, string> = {},
): Record<string, string> {
  return {
    format: 'aligner/1',
    base_model: 'stories260K',
    base_fingerprint: fingerprint,
    tokens: String(tokens),
    start_layer: String(startLayer),
    method: 'sft',
    examples: '1',
    epochs: '1',
    date: '2026-01-01T00:00:00.000Z',
    ...more,
  };
}

/** The summary `writeAdapter` records for an untrained adapter of `model`. */
export function untrainedSummary(model: { name: string; fingerprint: string }): AdapterSummary {
  return {
    base_model: model.name,
    base_fingerprint: model.fingerprint,
    method: 'sft',
    examples: 0,
    epochs: 0,
    train_loss: null,
    val_loss: null,
    date: '2026-01-01T00:00:00.000Z',
    extra: {},
  };
}

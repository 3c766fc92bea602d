// Packs the frozen weights into one float32 blob that every onnxruntime
// session reads as its external data: loaded once, shared by all graphs.

import type { WeightIndex } from '../../kernels/llama';
import { expectedWeights } from '../model/weights';
import type { BaseModel } from '../model/types';

/** Aligned so that onnxruntime can use each tensor in place. */
const ALIGN = 64;

export interface PackedWeights {
  blob: Uint8Array;
  index: WeightIndex;
}

export function packWeights(model: BaseModel): PackedWeights {
  const shapes = expectedWeights(model.config);
  const entries = new Map<string, { shape: number[]; offset: number }>();
  let size = 0;
  for (const [name, shape] of shapes) {
    entries.set(name, { shape, offset: size });
    size += Math.ceil((4 * shape.reduce((a, b) => a * b, 1)) / ALIGN) * ALIGN;
  }
  const blob = new Uint8Array(size);
  for (const [name, { offset }] of entries) {
    const data = model.weights.f32(name);
    blob.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), offset);
  }
  const index: WeightIndex = {
    has: (name) => entries.has(name),
    get: (name) => {
      const e = entries.get(name);
      if (!e) throw new Error(`model ${model.name} has no weight "${name}"`);
      return e;
    },
  };
  return { blob, index };
}

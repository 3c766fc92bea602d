import * as fs from 'fs';
import * as os from 'os';
import { ModelLoadError } from './errors';
import type { DType, GgmlType, ModelConfig, TensorRef, WeightStore } from './types';

export const DTYPE_BYTES: Record<DType, number> = { F32: 4, F16: 2, BF16: 2 };

if (os.endianness() !== 'LE') {
  // Tensor files are little-endian and are viewed in place as typed arrays.
  throw new Error('Aligner needs a little-endian CPU');
}

/** Weights read from their files on demand; nothing is cached, so each tensor lives once, with its caller. */
export class FileWeightStore implements WeightStore {
  readonly tensors: ReadonlyMap<string, TensorRef>;

  constructor(refs: Iterable<TensorRef>) {
    this.tensors = new Map([...refs].map((r) => [r.name, r]));
  }

  ref(name: string): TensorRef {
    const ref = this.tensors.get(name);
    if (!ref) throw new ModelLoadError(`weight "${name}" is not in the model`);
    return ref;
  }

  f32(name: string): Float32Array {
    const ref = this.ref(name);
    return toFloat32(readBytes(ref, 0, ref.byteLength), ref.dtype);
  }
}

/** Bytes [start, start + length) of a tensor, read straight from its file into a fresh, aligned buffer. */
export function readBytes(ref: TensorRef<GgmlType>, start: number, length: number): Uint8Array {
  const out = new Uint8Array(new ArrayBuffer(length));
  const fd = fs.openSync(ref.file, 'r');
  try {
    let done = 0;
    while (done < length) {
      const n = fs.readSync(fd, out, done, length - done, ref.offset + start + done);
      if (n === 0) throw new ModelLoadError(`${ref.file}: truncated while reading tensor "${ref.name}"`);
      done += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return out;
}

/**
 * Little-endian tensor bytes as float32. F32 input that is 4-byte aligned is viewed, not copied;
 * unaligned input is copied into a fresh Uint8Array (a Buffer's slice() would be another view).
 */
export function toFloat32(bytes: Uint8Array, dtype: DType): Float32Array {
  if (dtype === 'F32') {
    if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    return new Float32Array(new Uint8Array(bytes).buffer);
  }
  const n = bytes.byteLength / 2;
  const out = new Float32Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === 'BF16') {
    // bf16 is the top half of a float32.
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) bits[i] = view.getUint16(2 * i, true) << 16;
  } else {
    for (let i = 0; i < n; i++) out[i] = f16ToF32(view.getUint16(2 * i, true));
  }
  return out;
}

/** IEEE half to float, including subnormals, infinities and NaN. */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** Every weight the config implies, with its shape, by Hugging Face name. */
export function expectedWeights(config: ModelConfig): Map<string, number[]> {
  const { hiddenSize: d, intermediateSize: f, numHeads, numKvHeads, headDim, vocabSize } = config;
  const q = numHeads * headDim;
  const kv = numKvHeads * headDim;
  const shapes = new Map<string, number[]>([['model.embed_tokens.weight', [vocabSize, d]]]);
  for (let i = 0; i < config.numLayers; i++) {
    const p = `model.layers.${i}.`;
    shapes.set(`${p}input_layernorm.weight`, [d]);
    shapes.set(`${p}self_attn.q_proj.weight`, [q, d]);
    shapes.set(`${p}self_attn.k_proj.weight`, [kv, d]);
    shapes.set(`${p}self_attn.v_proj.weight`, [kv, d]);
    shapes.set(`${p}self_attn.o_proj.weight`, [d, q]);
    if (config.attentionBias) {
      shapes.set(`${p}self_attn.q_proj.bias`, [q]);
      shapes.set(`${p}self_attn.k_proj.bias`, [kv]);
      shapes.set(`${p}self_attn.v_proj.bias`, [kv]);
    }
    shapes.set(`${p}post_attention_layernorm.weight`, [d]);
    shapes.set(`${p}mlp.gate_proj.weight`, [f, d]);
    shapes.set(`${p}mlp.up_proj.weight`, [f, d]);
    shapes.set(`${p}mlp.down_proj.weight`, [d, f]);
  }
  shapes.set('model.norm.weight', [d]);
  if (!config.tieWordEmbeddings) shapes.set('lm_head.weight', [vocabSize, d]);
  return shapes;
}

/** Throws naming the first weight that is missing or has the wrong shape; `source` names the model. */
export function checkWeights(store: WeightStore, config: ModelConfig, source: string): void {
  for (const [name, shape] of expectedWeights(config)) {
    const ref = store.tensors.get(name);
    if (!ref) throw new ModelLoadError(`${source}: missing weight "${name}" (expected shape [${shape}])`);
    if (ref.shape.length !== shape.length || ref.shape.some((n, i) => n !== shape[i])) {
      throw new ModelLoadError(`${source}: weight "${name}" has shape [${ref.shape}], expected [${shape}]`);
    }
  }
}

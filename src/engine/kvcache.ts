// The key/value cache of a batch being generated: per layer one preallocated
// [rows, G, C, d_h] buffer that the step graph reads in place and the engine
// appends each step's new keys and values to. A step therefore copies only its
// own T tokens; the buffers grow in chunks of CACHE_CHUNK slots, so the whole
// cache is copied once per chunk instead of once per token.

import * as ort from 'onnxruntime-node';
import { f32 } from './feeds';

/** Slots added when the cache is full; the masked free slots cost each step's attention at most this many reads. */
export const CACHE_CHUNK = 128;

export class KVCache {
  private constructor(
    readonly rows: number,
    /** Key/value heads G and head size d_h. */
    private readonly heads: number,
    private readonly headDim: number,
    /** Slots per row and head, C ≥ length; slots length..C−1 are zero and masked. */
    private capacity: number,
    /** Filled slots P (the same for every row; shorter prompts leave masked holes). */
    private filled: number,
    /** Per layer, [rows, G, C, d_h]. */
    private keys: Float32Array[],
    private values: Float32Array[],
    /** [rows · C]: 1 where the slot holds a real token. */
    private valid: Uint8Array,
  ) {}

  static empty(layers: number, rows: number, heads: number, headDim: number): KVCache {
    const none = () => Array.from({ length: layers }, () => new Float32Array(0));
    return new KVCache(rows, heads, headDim, 0, 0, none(), none(), new Uint8Array(0));
  }

  get length(): number {
    return this.filled;
  }

  /** Slots of each row, filled or free: the step graph's C. */
  get slots(): number {
    return this.capacity;
  }

  /** Whether slot j of row r holds a real token (the attention mask reads it). */
  get validity(): Uint8Array {
    return this.valid;
  }

  /** The step graph's cache inputs: the buffers themselves, no copy. */
  feeds(): Record<string, ort.Tensor> {
    const dims = [this.rows, this.heads, this.capacity, this.headDim];
    const feeds: Record<string, ort.Tensor> = {};
    this.keys.forEach((k, l) => (feeds[`cache_key_${l}`] = f32(k, dims)));
    this.values.forEach((v, l) => (feeds[`cache_value_${l}`] = f32(v, dims)));
    return feeds;
  }

  /**
   * Appends T tokens per row: `keys[l]`, `values[l]` [rows, G, T, d_h] (the step
   * graph's new_key_l/new_value_l), `valid` [rows · T] (0 for padding).
   */
  append(keys: Float32Array[], values: Float32Array[], valid: ArrayLike<number>, T: number): void {
    const P = this.filled;
    if (P + T > this.capacity) this.resize(Math.ceil((P + T) / CACHE_CHUNK) * CACHE_CHUNK);
    const { rows, heads: G, headDim: D, capacity: C } = this;
    const write = (dst: Float32Array, src: Float32Array) => {
      for (let rg = 0; rg < rows * G; rg++) dst.set(src.subarray(rg * T * D, (rg + 1) * T * D), (rg * C + P) * D);
    };
    keys.forEach((k, l) => write(this.keys[l], k));
    values.forEach((v, l) => write(this.values[l], v));
    for (let r = 0; r < rows; r++) for (let t = 0; t < T; t++) this.valid[r * C + P + t] = valid[r * T + t];
    this.filled = P + T;
  }

  /** Moves the filled slots into buffers of C slots (C ≥ length). */
  private resize(C: number): void {
    const src = this.pick(
      Array.from({ length: this.rows }, (_, r) => r),
      Array.from({ length: this.filled }, (_, j) => j),
      C,
    );
    Object.assign(this, { capacity: C, keys: src.keys, values: src.values, valid: src.valid });
  }

  /**
   * The cache of rows `a` then rows `b`, both left-aligned: the shorter one's
   * missing slots are masked. Every row keeps its own slots.
   */
  static join(a: KVCache, b: KVCache): KVCache {
    const P = Math.max(a.filled, b.filled);
    const C = Math.max(a.capacity, b.capacity);
    const rows = a.rows + b.rows;
    const out = new KVCache(
      rows,
      a.heads,
      a.headDim,
      C,
      P,
      a.keys.map(() => new Float32Array(rows * a.heads * C * a.headDim)),
      a.values.map(() => new Float32Array(rows * a.heads * C * a.headDim)),
      new Uint8Array(rows * C),
    );
    for (const [s, first] of [
      [a, 0],
      [b, a.rows],
    ] as const) {
      const part = s.pick(
        Array.from({ length: s.rows }, (_, r) => r),
        Array.from({ length: s.filled }, (_, j) => j),
        C,
      );
      const size = s.rows * s.heads * C * s.headDim;
      const at = first * s.heads * C * s.headDim;
      part.keys.forEach((k, l) => out.keys[l].set(k.subarray(0, size), at));
      part.values.forEach((v, l) => out.values[l].set(v.subarray(0, size), at));
      out.valid.set(part.valid.subarray(0, s.rows * C), first * C);
    }
    return out;
  }

  /**
   * The cache of only the given rows (in that order). Slots that no kept row
   * sees are dropped, so a long-lived batch does not carry the padding of rows
   * that have left.
   */
  keep(rows: number[]): KVCache {
    const C = this.capacity;
    const slots: number[] = [];
    for (let j = 0; j < this.filled; j++) if (rows.some((r) => this.valid[r * C + j])) slots.push(j);
    const part = this.pick(rows, slots, C);
    return new KVCache(rows.length, this.heads, this.headDim, C, slots.length, part.keys, part.values, part.valid);
  }

  /** Rows `rows` and slots `slots` (in order) copied into fresh buffers of C slots per row. */
  private pick(rows: number[], slots: number[], C: number) {
    const { heads: G, headDim: D, capacity: from } = this;
    const contiguous = slots.every((j, k) => j === k);
    const copy = (src: Float32Array) => {
      const out = new Float32Array(rows.length * G * C * D);
      rows.forEach((r, i) => {
        for (let g = 0; g < G; g++) {
          const s = (r * G + g) * from * D;
          const d = (i * G + g) * C * D;
          if (contiguous) out.set(src.subarray(s, s + slots.length * D), d);
          else slots.forEach((j, k) => out.set(src.subarray(s + j * D, s + (j + 1) * D), d + k * D));
        }
      });
      return out;
    };
    const valid = new Uint8Array(rows.length * C);
    rows.forEach((r, i) => slots.forEach((j, k) => (valid[i * C + k] = this.valid[r * from + j])));
    return { keys: this.keys.map(copy), values: this.values.map(copy), valid };
  }
}

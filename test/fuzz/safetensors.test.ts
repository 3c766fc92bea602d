// Fuzz: safetensors files as adapters (readAdapter, readAdapterHeader) and as model weights
// (readSafetensors + FileWeightStore, readSafetensorsBuffer): valid files of any header padding,
// dtype and shape, then damaged byte by byte, and plain random bytes.

import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import * as fc from 'fast-check';
import { AdapterError } from '../../src/adapter/errors';
import { readAdapter, readAdapterHeader } from '../../src/adapter/file';
import { ModelLoadError } from '../../src/model/errors';
import { readSafetensors, readSafetensorsBuffer } from '../../src/model/safetensors';
import { FileWeightStore } from '../../src/model/weights';
import { adapterMeta, rawSafetensors, withHeader } from '../adapter/raw';
import { tempDir } from '../model/paths';
import { fuzz, mutated, typedOrResult } from './fuzz';

const REQUIRED_META = ['format', 'base_model', 'base_fingerprint', 'tokens', 'start_layer', 'method', 'examples', 'epochs', 'date'];

/** Deterministic values from a seed (generating thousands of floats through fast-check is slow). */
function values(n: number, seed: number, nan: boolean): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sin(seed + i * 1.7) * 10 ** ((seed + i) % 5);
  if (nan && n > 0) out[seed % n] = NaN;
  return out;
}

const adapterCase = fc
  .record({
    tokens: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.constantFrom(0, 64, 65)),
    d: fc.constantFrom(8, 64),
    rows: fc.integer({ min: 0, max: 4 }),
    heads: fc.constantFrom(1, 8),
    startLayer: fc.integer({ min: 0, max: 3 }),
    pad: fc.nat(7),
    drop: fc.subarray(REQUIRED_META, { maxLength: 2 }),
    extra: fc.dictionary(
      fc.string({ maxLength: 8 }).map((k) => `x_${k}`),
      fc.string({ maxLength: 20 }),
      { maxKeys: 3 },
    ),
    seed: fc.nat(1000),
    nan: fc.boolean(),
  })
  .map((c) => {
    const prefix = values(c.tokens * c.d, c.seed, c.nan && c.seed % 3 === 0);
    const gates = values(c.rows * c.heads, c.seed + 1, false);
    const meta: Record<string, string> = { ...adapterMeta('fp', c.tokens, c.startLayer), ...c.extra };
    for (const k of c.drop) delete meta[k];
    const bytes = rawSafetensors(
      [
        { name: 'prefix', shape: [c.tokens, c.d], values: prefix },
        { name: 'gates', shape: [c.rows, c.heads], values: gates },
      ],
      meta,
      c.pad,
    );
    const valid = c.tokens >= 1 && c.tokens <= 64 && c.rows > 0 && c.drop.length === 0 && !prefix.some(Number.isNaN);
    return { bytes, valid, prefix, gates };
  });

test('fuzz: adapter files (readAdapter and readAdapterHeader)', async (t) => {
  const dir = tempDir();
  let n = 0;
  const arb = fc.oneof(
    { weight: 4, arbitrary: adapterCase.chain((c) => mutated(fc.constant(c.bytes)).map((m) => ({ ...c, ...m }))) },
    {
      weight: 1,
      arbitrary: fc
        .uint8Array({ maxLength: 64 })
        .map((b) => ({ bytes: Buffer.from(b), intact: false, valid: false, prefix: null, gates: null })),
    },
  );
  await fuzz(
    t,
    'adapter safetensors',
    arb,
    (c) => {
      const file = path.join(dir, `a${n++}.safetensors`);
      fs.writeFileSync(file, c.bytes);
      const full = typedOrResult(() => readAdapter(file), [AdapterError]);
      const header = typedOrResult(() => readAdapterHeader(file), [AdapterError]);
      fs.rmSync(file);
      if (full) {
        assert.ok(header, 'the header-only read refused a file that reads in full');
        assert.deepEqual(header.layout, full.layout);
        assert.ok(full.tokens >= 1 && full.tokens <= 64);
        assert.equal(full.prefix.length, full.tokens * full.layout.prefixShape[1]);
        assert.equal(full.gates.length, full.layout.gatesShape[0] * full.layout.gatesShape[1]);
        assert.ok(full.prefix.every(Number.isFinite) && full.gates.every(Number.isFinite));
      }
      if (c.intact && c.valid && c.prefix) {
        assert.ok(full, 'a valid adapter was refused');
        assert.deepEqual(full.prefix, c.prefix);
        assert.deepEqual(full.gates, c.gates);
      }
    },
    { watch: [dir] },
  );
});

const DTYPES = { F32: 4, F16: 2, BF16: 2 } as const;

const modelCase = fc
  .record({
    tensors: fc.uniqueArray(
      fc.record({
        name: fc.string({ minLength: 1, maxLength: 12 }),
        dtype: fc.constantFrom('F32', 'F16', 'BF16'),
        shape: fc.array(fc.integer({ min: 0, max: 6 }), { maxLength: 3 }),
      }),
      { selector: (t) => t.name, maxLength: 4 },
    ),
    metadata: fc.option(fc.dictionary(fc.string({ maxLength: 6 }), fc.string({ maxLength: 12 }), { maxKeys: 3 })),
    pad: fc.nat(7),
    seed: fc.nat(1000),
  })
  .map((c) => {
    // No prototype, so that a tensor named "__proto__" is a key like any other.
    const header: Record<string, unknown> = Object.create(null);
    if (c.metadata) header.__metadata__ = c.metadata;
    const data: Buffer[] = [];
    let offset = 0;
    for (const [i, t] of c.tensors.entries()) {
      const count = t.shape.reduce((a, b) => a * b, 1);
      const bytes = Buffer.from(values(count * (DTYPES[t.dtype] / 2), c.seed + i, false).buffer).subarray(0, count * DTYPES[t.dtype]);
      header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
      data.push(bytes);
      offset += bytes.length;
    }
    const valid = !c.tensors.some((t) => t.name === '__metadata__');
    return { bytes: withHeader(JSON.stringify(header) + ' '.repeat(c.pad), Buffer.concat(data)), tensors: c.tensors, data, valid };
  });

test('fuzz: model weight files (readSafetensors + FileWeightStore, readSafetensorsBuffer)', async (t) => {
  const dir = tempDir();
  let n = 0;
  const arb = modelCase.chain((c) => mutated(fc.constant(c.bytes)).map((m) => ({ ...c, ...m })));
  await fuzz(
    t,
    'model safetensors',
    arb,
    (c) => {
      const file = path.join(dir, `m${n++}.safetensors`);
      fs.writeFileSync(file, c.bytes);
      const contents = typedOrResult(() => readSafetensors(file), [ModelLoadError]);
      const inMemory = typedOrResult(() => readSafetensorsBuffer(c.bytes, 'buffer'), [ModelLoadError]);
      assert.equal(contents === null, inMemory === null, 'the file and buffer readers disagree');
      if (contents && inMemory) {
        const store = new FileWeightStore(contents.tensors);
        for (const ref of contents.tensors) {
          const a = store.f32(ref.name);
          assert.equal(a.length, ref.byteLength / DTYPES[ref.dtype]);
          assert.deepEqual(inMemory.tensors.get(ref.name)!.data, a);
        }
      }
      fs.rmSync(file);
      if (c.intact && c.valid) {
        assert.ok(contents, 'a valid file was refused');
        for (const [i, t] of c.tensors.entries()) {
          if (t.dtype !== 'F32') continue;
          const expected = new Float32Array(new Uint8Array(c.data[i]).buffer);
          assert.deepEqual(inMemory!.tensors.get(t.name)!.data, expected, `tensor ${t.name}`);
        }
      }
    },
    { watch: [dir] },
  );
});

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { ModelLoadError } from '../../src/model/errors';
import { readSafetensors } from '../../src/model/safetensors';
import type { TensorRef } from '../../src/model/types';
import { f16ToF32, FileWeightStore, toFloat32 } from '../../src/model/weights';
import { STORIES, tempDir } from './paths';

test('f16 conversion covers normals, subnormals, zeros, infinities and NaN', () => {
  assert.equal(f16ToF32(0x3c00), 1);
  assert.equal(f16ToF32(0xc000), -2);
  assert.equal(f16ToF32(0x7bff), 65504);
  assert.equal(f16ToF32(0x0001), 2 ** -24);
  assert.equal(f16ToF32(0x03ff), 1023 * 2 ** -24);
  assert.equal(f16ToF32(0x0400), 2 ** -14);
  assert.ok(Object.is(f16ToF32(0x8000), -0));
  assert.equal(f16ToF32(0x7c00), Infinity);
  assert.equal(f16ToF32(0xfc00), -Infinity);
  assert.ok(Number.isNaN(f16ToF32(0x7e00)));
  assert.equal(f16ToF32(0x3555), 0.333251953125);
});

test('bf16 is the top half of a float32', () => {
  const bytes = new Uint8Array(new Uint16Array([0x3f80, 0xc049, 0x7f80, 0x0001]).buffer);
  const out = toFloat32(bytes, 'BF16');
  assert.equal(out[0], 1);
  assert.equal(out[1], new Float32Array(new Uint32Array([0xc0490000]).buffer)[0]);
  assert.equal(out[2], Infinity);
  assert.equal(out[3], new Float32Array(new Uint32Array([0x00010000]).buffer)[0]);
});

test('f32 reads a tensor of the real model from its file offset', () => {
  const file = path.join(STORIES, 'model.safetensors');
  const store = new FileWeightStore(readSafetensors(file).tensors);
  const ref = store.tensors.get('model.norm.weight')!;
  const bytes = fs.readFileSync(file).subarray(ref.offset, ref.offset + ref.byteLength);
  assert.deepEqual(
    store.f32('model.norm.weight'),
    new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)),
  );
  assert.throws(
    () => store.f32('lm_head.weight'),
    (e: Error) => e instanceof ModelLoadError && e.message.includes('"lm_head.weight"'),
  );
});

test('f32 converts F16 and BF16 tensors at an odd file offset', () => {
  const file = path.join(tempDir(), 'w.bin');
  fs.writeFileSync(file, Buffer.from([0xff, 0x00, 0x3c, 0x00, 0xbc, 0x80, 0x3f]));
  const refs: TensorRef[] = [
    { name: 'h', dtype: 'F16', shape: [2], file, offset: 1, byteLength: 4 },
    { name: 'b', dtype: 'BF16', shape: [1], file, offset: 5, byteLength: 2 },
  ];
  const store = new FileWeightStore(refs);
  assert.deepEqual([...store.f32('h')], [1, -1]);
  assert.deepEqual([...store.f32('b')], [1]);
});

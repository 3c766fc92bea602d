import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { ModelLoadError } from '../../src/model/errors';
import { readSafetensors, readSafetensorsBuffer, readSafetensorsFolder, writeSafetensors } from '../../src/model/safetensors';
import { STORIES, tempDir } from './paths';

const MODEL = path.join(STORIES, 'model.safetensors');

function assertLoadError(fn: () => unknown, ...parts: string[]): void {
  assert.throws(fn, (err: Error) => {
    assert.ok(err instanceof ModelLoadError, `not a ModelLoadError: ${err}`);
    for (const part of parts) assert.ok(err.message.includes(part), `"${err.message}" does not mention ${part}`);
    return true;
  });
}

/** A file made of an 8-byte header length, the header text and `data` bytes. */
function rawFile(header: string, data = 0, declaredLength = Buffer.byteLength(header)): string {
  const file = path.join(tempDir(), 'model.safetensors');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(declaredLength));
  fs.writeFileSync(file, Buffer.concat([length, Buffer.from(header), Buffer.alloc(data)]));
  return file;
}

test('reads the stories260K header', () => {
  const { tensors, metadata } = readSafetensors(MODEL);
  assert.deepEqual(metadata, { format: 'pt' });
  const embed = tensors.find((t) => t.name === 'model.embed_tokens.weight')!;
  assert.deepEqual(embed.shape, [512, 64]);
  assert.equal(embed.dtype, 'F32');
  assert.equal(embed.byteLength, 512 * 64 * 4);
  const last = Math.max(...tensors.map((t) => t.offset + t.byteLength));
  assert.equal(last, fs.statSync(MODEL).size);
});

test('a truncated file names the tensor, its bytes and the file size', () => {
  const file = path.join(tempDir(), 'model.safetensors');
  const bytes = fs.readFileSync(MODEL);
  fs.writeFileSync(file, bytes.subarray(0, bytes.length - 100));
  const last = readSafetensors(MODEL).tensors.reduce((a, b) => (a.offset > b.offset ? a : b));
  assertLoadError(
    () => readSafetensors(file),
    `model.safetensors: truncated: tensor "${last.name}" needs bytes ${last.offset}..${last.offset + last.byteLength} but the file has ${bytes.length - 100} bytes`,
  );
});

test('rejects corrupt header JSON, a header length beyond the file, and a tiny file', () => {
  assertLoadError(() => readSafetensors(rawFile('{"a": {"dtype": ')), 'model.safetensors', 'not valid JSON');
  assertLoadError(() => readSafetensors(rawFile('{}', 0, 1000)), 'model.safetensors', 'header length 1000', 'larger than the file');
  const tiny = path.join(tempDir(), 'tiny.safetensors');
  fs.writeFileSync(tiny, Buffer.alloc(3));
  assertLoadError(() => readSafetensors(tiny), 'tiny.safetensors', 'too short');
});

test('rejects bad dtypes, offsets that disagree with the shape, and overlaps', () => {
  assertLoadError(() => readSafetensors(rawFile('{"w":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}}', 16)), 'tensor "w"', '"I64"');
  assertLoadError(
    () => readSafetensors(rawFile('{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}', 16)),
    'tensor "w"',
    'needs 16',
  );
  assertLoadError(
    () => readSafetensors(rawFile('{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,4]}}', 16)),
    'tensor "w"',
    'data_offsets',
  );
  assertLoadError(
    () =>
      readSafetensors(
        rawFile('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', 16),
      ),
    '"a" and "b" overlap',
  );
});

test('writes a file that reads back, header padded to 8 bytes', () => {
  const file = path.join(tempDir(), 'x.safetensors');
  const a = new Float32Array([1, -2.5, 3e-8, 4]);
  const b = new Float32Array([Math.PI]);
  writeSafetensors(
    file,
    [
      { name: 'a', dtype: 'F32', shape: [2, 2], data: a },
      { name: 'b', dtype: 'F32', shape: [1], data: b },
    ],
    { note: 'héllo' },
  );
  const bytes = fs.readFileSync(file);
  assert.equal(Number(bytes.readBigUInt64LE(0)) % 8, 0);
  const back = readSafetensorsBuffer(bytes, 'x.safetensors');
  assert.deepEqual(back.metadata, { note: 'héllo' });
  assert.deepEqual(back.tensors.get('a')!.shape, [2, 2]);
  assert.deepEqual(back.tensors.get('a')!.data, a);
  assert.deepEqual(back.tensors.get('b')!.data, b);
  assert.deepEqual(
    readSafetensors(file).tensors.map((t) => t.name),
    ['a', 'b'],
  );
});

test('reads a sharded folder through model.safetensors.index.json', () => {
  const dir = tempDir();
  writeSafetensors(
    path.join(dir, 'model-00001-of-00002.safetensors'),
    [{ name: 'x', dtype: 'F32', shape: [1], data: new Float32Array([1]) }],
    {},
  );
  writeSafetensors(
    path.join(dir, 'model-00002-of-00002.safetensors'),
    [{ name: 'y', dtype: 'F32', shape: [2], data: new Float32Array([2, 3]) }],
    {},
  );
  const index = { weight_map: { x: 'model-00001-of-00002.safetensors', y: 'model-00002-of-00002.safetensors' } };
  fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify(index));
  const { tensors } = readSafetensorsFolder(dir);
  assert.deepEqual(
    tensors.map((t) => [t.name, path.basename(t.file)]),
    [
      ['x', 'model-00001-of-00002.safetensors'],
      ['y', 'model-00002-of-00002.safetensors'],
    ],
  );
  index.weight_map.y = 'model-00001-of-00002.safetensors';
  fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify(index));
  assertLoadError(() => readSafetensorsFolder(dir), 'model-00001-of-00002.safetensors', 'tensor "y"');
  assertLoadError(() => readSafetensorsFolder(tempDir()), 'model.safetensors', 'model.safetensors.index.json');
});

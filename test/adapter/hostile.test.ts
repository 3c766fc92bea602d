// Hostile and unusual adapter files (issue 6, defects 2 and 3): valid files from other writers
// are read exactly; oversized, special or deeply nested files give a short AdapterError, fast,
// and never block the thread that reads them.

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readAdapter, readAdapterHeader } from '../../src/adapter/file';
import { AdapterError } from '../../src/adapter/errors';
import { checkAdapterFits } from '../../src/adapter/fit';
import { ModelLoadError } from '../../src/model/errors';
import { readSafetensors } from '../../src/model/safetensors';
import { loadModel } from '../../src/model/load';
import type { BaseModel } from '../../src/model/types';
import { STORIES, tempDir } from '../model/paths';
import { adapterMeta, rawSafetensors, withHeader } from './raw';

let model: BaseModel;
test.before(async () => {
  model = await loadModel(STORIES);
});

/** A 2-token adapter for stories260K (d = 64, 5 layers, 8 heads) with distinct values. */
function adapterBytes(pad: number, meta: Record<string, string> = {}): { bytes: Buffer; prefix: Float32Array; gates: Float32Array } {
  const prefix = Float32Array.from({ length: 2 * 64 }, (_, i) => i / 7 - 3);
  const gates = Float32Array.from({ length: 3 * 8 }, (_, i) => (i - 11) / 13);
  const bytes = rawSafetensors(
    [
      { name: 'prefix', shape: [2, 64], values: prefix },
      { name: 'gates', shape: [3, 8], values: gates },
    ],
    adapterMeta(model.fingerprint, 2, 2, meta),
    pad,
  );
  return { bytes, prefix, gates };
}

test('defect 2: an adapter whose header length is not a multiple of 8 is read exactly', () => {
  const dir = tempDir();
  for (let pad = 0; pad < 8; pad++) {
    const { bytes, prefix, gates } = adapterBytes(pad);
    const file = path.join(dir, `pad${pad}.safetensors`);
    fs.writeFileSync(file, bytes);
    const a = readAdapter(file);
    assert.deepEqual(a.prefix, prefix, `pad ${pad}: prefix`);
    assert.deepEqual(a.gates, gates, `pad ${pad}: gates`);
    checkAdapterFits(a, model, file);
    assert.deepEqual(readAdapterHeader(file).layout.prefixShape, [2, 64]);
  }
});

test('defect 3: a header over the cap is refused before it is read (no 64 MB list answers)', () => {
  const file = path.join(tempDir(), 'big.safetensors');
  fs.writeFileSync(file, adapterBytes(0, { description: 'x'.repeat(300_000) }).bytes);
  for (const read of [readAdapter, readAdapterHeader]) {
    assert.throws(
      () => read(file),
      (err: Error) =>
        err instanceof AdapterError && /big\.safetensors.*header of \d+ bytes, more than the 262144 allowed/.test(err.message),
    );
  }
});

test('defect 3: more than 64 prefix tokens are refused from the header', () => {
  const file = path.join(tempDir(), 'many.safetensors');
  const prefix = new Float32Array(65 * 64);
  fs.writeFileSync(
    file,
    rawSafetensors(
      [
        { name: 'prefix', shape: [65, 64], values: prefix },
        { name: 'gates', shape: [3, 8], values: new Float32Array(24) },
      ],
      adapterMeta(model.fingerprint, 65, 2),
    ),
  );
  for (const read of [readAdapter, readAdapterHeader]) {
    assert.throws(
      () => read(file),
      (err: Error) => err instanceof AdapterError && /"tokens" must be an integer from 1 to 64, found "65"/.test(err.message),
    );
  }
});

test('defect 3: a huge tensor name or metadata value is quoted as a short excerpt', () => {
  const dir = tempDir();
  const name = 'n'.repeat(100_000);
  const badName = path.join(dir, 'name.safetensors');
  fs.writeFileSync(badName, withHeader(JSON.stringify({ [name]: { dtype: 'Q9', shape: [1], data_offsets: [0, 4] } }), Buffer.alloc(4)));
  const badMethod = path.join(dir, 'method.safetensors');
  fs.writeFileSync(badMethod, adapterBytes(0, { method: 'm'.repeat(100_000) }).bytes);
  for (const file of [badName, badMethod]) {
    for (const read of [readAdapter, readAdapterHeader]) {
      assert.throws(
        () => read(file),
        (err: Error) => err instanceof AdapterError && err.message.length < 300 && err.message.includes('…'),
        file,
      );
    }
  }
});

test('defect 3: a deeply nested header is a typed error, not a stack overflow', () => {
  const dir = tempDir();
  const deep = '['.repeat(100_000) + ']'.repeat(100_000);
  const adapter = path.join(dir, 'deep.safetensors');
  fs.writeFileSync(adapter, withHeader(`{"prefix":{"dtype":${deep},"shape":[1],"data_offsets":[0,4]}}`, Buffer.alloc(4)));
  assert.throws(
    () => readAdapter(adapter),
    (err: Error) => err instanceof AdapterError && /nested 100002 levels deep/.test(err.message),
  );
  const deeper = '['.repeat(500_000) + ']'.repeat(500_000);
  const weights = path.join(dir, 'model.safetensors');
  fs.writeFileSync(weights, withHeader(`{"w":{"dtype":${deeper},"shape":[1],"data_offsets":[0,4]}}`, Buffer.alloc(4)));
  assert.throws(
    () => readSafetensors(weights),
    (err: Error) => err instanceof ModelLoadError && /nested 500002 levels deep/.test(err.message),
  );
});

/** Runs `fn(file)` of src/adapter/file.ts in a child process, so a read that blocks or runs away cannot stall the suite. */
function readInChild(fn: 'readAdapter' | 'readAdapterHeader', file: string) {
  const lib = path.resolve(__dirname, '..', '..', 'src', 'adapter', 'file.js');
  const script = `try { require(${JSON.stringify(lib)}).${fn}(process.argv[1]); console.log('read'); } catch (e) { console.log(e.name + ': ' + e.message); }`;
  const started = Date.now();
  const r = spawnSync(process.execPath, ['--max-old-space-size=256', '-e', script, file], { encoding: 'utf8', timeout: 10_000 });
  return { out: r.stdout.trim(), ms: Date.now() - started, killed: r.signal !== null };
}

test('defect 3: /dev/zero, a FIFO and a folder are refused at once, without reading or blocking', () => {
  const fifo = path.join(tempDir(), 'pipe.safetensors');
  execFileSync('mkfifo', [fifo]);
  const folder = path.join(tempDir(), 'folder.safetensors');
  fs.mkdirSync(folder);
  for (const [file, what] of [
    ['/dev/zero', 'a character device'],
    [fifo, 'a FIFO'],
    [folder, 'folder'],
  ]) {
    for (const fn of ['readAdapter', 'readAdapterHeader'] as const) {
      const r = readInChild(fn, file);
      assert.equal(r.killed, false, `${fn}(${file}) did not return within 10 s`);
      assert.match(r.out, new RegExp(`^AdapterError: adapter "${path.basename(file)}": .*${what}`), `${fn}(${file})`);
    }
  }
});

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomic } from '../../src/util/atomic';
import { tempDir } from '../model/paths';

test('replaces the file and leaves no temporary file behind', () => {
  const dir = tempDir();
  const file = path.join(dir, 'a.txt');
  fs.writeFileSync(file, 'old');
  fs.writeFileSync(path.join(dir, 'neighbour.txt'), 'keep');
  writeFileAtomic(file, 'new content');
  assert.equal(fs.readFileSync(file, 'utf8'), 'new content');
  assert.deepEqual(fs.readdirSync(dir).sort(), ['a.txt', 'neighbour.txt']);
});

test('a failure while writing keeps the old file intact and removes the temporary file', () => {
  const dir = tempDir();
  const file = path.join(dir, 'a.txt');
  fs.writeFileSync(file, 'old');
  function* failing(): Generator<Uint8Array> {
    yield Buffer.from('half of the new ');
    throw new Error('disk full');
  }
  assert.throws(() => writeFileAtomic(file, failing()), /disk full/);
  assert.equal(fs.readFileSync(file, 'utf8'), 'old');
  assert.deepEqual(fs.readdirSync(dir), ['a.txt']);
});

test('writes chunks in order to a new file', () => {
  const file = path.join(tempDir(), 'b.bin');
  writeFileAtomic(file, [Buffer.from([1, 2]), new Uint8Array([3])]);
  assert.deepEqual([...fs.readFileSync(file)], [1, 2, 3]);
});

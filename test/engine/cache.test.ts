// The weights cache shared by several processes (issue 6, defect 6): a folder another
// live process uses is never removed, and temporary files of killed conversions go.

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { weightsFile } from '../../src/engine/weights';
import { loadModel } from '../../src/model/load';

const STORIES = path.resolve(__dirname, '..', '..', '..', '..', 'shared', 'models', 'stories260K');
const OUT = path.resolve(__dirname, '..', '..');

function copyModel(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const f of fs.readdirSync(STORIES))
    if (fs.statSync(path.join(STORIES, f)).isFile()) fs.copyFileSync(path.join(STORIES, f), path.join(dir, f));
}

test('a cache folder in use by another process survives a newer version of the model; it goes once that process is gone', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aligner-cache-'));
  try {
    const modelDir = path.join(tmp, 'model');
    const cache = path.join(tmp, 'cache');
    copyModel(modelDir);
    // Window A converts and keeps using the model.
    const script = `
      const { weightsFile } = require(${JSON.stringify(path.join(OUT, 'src/engine/weights.js'))});
      const { loadModel } = require(${JSON.stringify(path.join(OUT, 'src/model/load.js'))});
      loadModel(${JSON.stringify(modelDir)}).then((m) => { console.log(weightsFile(m, ${JSON.stringify(cache)}).dir); setInterval(() => {}, 1000); });`;
    const a = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const aDir = await new Promise<string>((resolve) => a.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim())));
    try {
      assert.ok(fs.existsSync(path.join(aDir, 'weights.bin')));
      // The model's files change; window B opens it.
      const later = new Date(Date.now() + 5000);
      fs.utimesSync(path.join(modelDir, 'model.safetensors'), later, later);
      const b = weightsFile(await loadModel(modelDir), cache);
      assert.notEqual(b.dir, aDir);
      assert.ok(fs.existsSync(path.join(aDir, 'weights.bin')), 'window B removed the folder window A uses');
    } finally {
      a.kill('SIGKILL');
      await new Promise((r) => a.once('exit', r));
    }
    // A is gone: its folder is now stale and goes the next time the model is opened.
    weightsFile(await loadModel(modelDir), cache);
    assert.ok(!fs.existsSync(aDir), 'the stale folder of a finished process was kept');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('temporary files of a killed conversion are swept the next time the model is opened', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aligner-cache-'));
  try {
    const model = await loadModel(STORIES);
    const { dir } = weightsFile(model, tmp);
    // What a conversion killed mid-write leaves: a temporary file named by its (now dead) pid.
    const dead = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => dead.once('exit', r));
    const stale = path.join(dir, `.weights.bin.${dead.pid}.0123abcd.tmp`);
    fs.writeFileSync(stale, Buffer.alloc(1024));
    weightsFile(model, tmp);
    assert.ok(!fs.existsSync(stale), 'the stale temporary file was kept');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

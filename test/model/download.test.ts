// The resumable model download against a Hugging Face-shaped server on loopback:
// an interrupted weights file is continued with a Range request, and the result loads.

import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { test } from 'node:test';
import { downloadModel } from '../../src/model/download';
import { loadModel } from '../../src/model/load';
import { STORIES, tempDir } from './paths';

/** Serves STORIES as repo "karpathy/stories260K"; the first weights request is cut after `cutAt` bytes. */
async function hubServer(cutAt: number) {
  const ranges: (string | undefined)[] = [];
  let cut = false;
  const server = http.createServer((req, res) => {
    const m = /^\/karpathy\/stories260K\/resolve\/main\/([\w.-]+)$/.exec(req.url ?? '');
    const file = m && path.join(STORIES, m[1]);
    if (!file || !fs.existsSync(file)) return void res.writeHead(404).end();
    const data = fs.readFileSync(file);
    if (m![1] === 'model.safetensors') ranges.push(req.headers.range);
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    res.writeHead(range ? 206 : 200, { 'Content-Length': data.length - start });
    if (m![1] === 'model.safetensors' && !cut) {
      cut = true;
      res.write(data.subarray(start, cutAt), () => res.destroy());
      return;
    }
    res.end(data.subarray(start));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, ranges, endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

test('an interrupted download resumes with a Range request and loads', async () => {
  const hub = await hubServer(300_000);
  const dest = path.join(tempDir(), 'stories260K');
  try {
    await assert.rejects(downloadModel('karpathy/stories260K', dest, { endpoint: hub.endpoint }));
    assert.equal(fs.existsSync(path.join(dest, 'model.safetensors')), false, 'no half-written weights file');
    assert.equal(fs.statSync(path.join(dest, 'model.safetensors.part')).size, 300_000);

    await downloadModel('karpathy/stories260K', dest, { endpoint: hub.endpoint });
    assert.deepEqual(hub.ranges, [undefined, 'bytes=300000-']);
    assert.ok(fs.readFileSync(path.join(dest, 'model.safetensors')).equals(fs.readFileSync(path.join(STORIES, 'model.safetensors'))));
    assert.equal(fs.existsSync(path.join(dest, 'model.safetensors.part')), false);
    const model = await loadModel(dest);
    assert.equal(model.config.hiddenSize, 64);
  } finally {
    hub.server.close();
  }
});

test('a missing repository or a bad id is a clear error', async () => {
  const hub = await hubServer(0);
  try {
    await assert.rejects(downloadModel('nobody/nothing', tempDir(), { endpoint: hub.endpoint }), /config\.json: download failed with HTTP 404/);
    await assert.rejects(downloadModel('not an id', tempDir(), { endpoint: hub.endpoint }), /"not an id" is not a Hugging Face model id/);
  } finally {
    hub.server.close();
  }
});

// The resumable model download against a Hugging Face-shaped server on loopback: HEAD answers
// with X-Repo-Commit and, for the LFS weights, a redirect carrying X-Linked-Etag (SHA-256) and
// X-Linked-Size, as huggingface.co does; GET honours Range, If-Range and Accept-Encoding.
// Each defect of issue 6 item 8 has a switch that makes the server misbehave that way.

import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { downloadModel } from '../../src/model/download';
import { loadModel } from '../../src/model/load';
import { STORIES, tempDir } from './paths';

const REPO = '/karpathy/stories260K';
const WEIGHTS = 'model.safetensors';

interface HubOptions {
  /** The first weights GET is cut after this many bytes. */
  cutAt?: number;
  /** Compress every GET body with gzip, whatever the client asks for (a misconfigured proxy). */
  alwaysGzip?: boolean;
  /** Answer the weights GET with a 200 HTML error page. */
  html?: boolean;
  /** Flip one byte of the weights in every GET body (a corrupting proxy). */
  corrupt?: boolean;
  /** Ignore If-Range (send 206 from the new file anyway). */
  ignoreIfRange?: boolean;
  /** Publish these files as a new main commit right after answering the first request. */
  moveMain?: Record<string, Buffer>;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');

/** Serves a copy of STORIES as "karpathy/stories260K"; `commit(files)` publishes a new snapshot as main. */
async function hubServer(opts: HubOptions = {}) {
  const snapshots = new Map<string, Map<string, Buffer>>();
  let main = '';
  const commit = (changes: Record<string, Buffer> = {}) => {
    const files = new Map(
      main
        ? snapshots.get(main)!
        : fs
            .readdirSync(STORIES)
            .filter((f) => fs.statSync(path.join(STORIES, f)).isFile())
            .map((f) => [f, fs.readFileSync(path.join(STORIES, f))]),
    );
    for (const [name, data] of Object.entries(changes)) files.set(name, data);
    main = sha1(Buffer.from(`${snapshots.size}`)).padEnd(40, '0');
    snapshots.set(main, files);
    return main;
  };
  commit();
  const log: { method: string; url: string; rev?: string; range?: string; ifRange?: string; encoding?: string }[] = [];
  let cut = opts.cutAt !== undefined;
  const server = http.createServer((req, res) => {
    if (opts.moveMain && log.length === 1) commit(opts.moveMain);
    log.push({
      method: req.method!,
      url: req.url!,
      rev: /\/(?:resolve|lfs)\/([^/]+)\//.exec(req.url ?? '')?.[1],
      range: req.headers.range,
      ifRange: req.headers['if-range'] as string | undefined,
      encoding: req.headers['accept-encoding'],
    });
    const lfs = /^\/lfs\/([0-9a-f]{40})\/([^/]+)$/.exec(req.url ?? '');
    const m = lfs ?? new RegExp(`^${REPO}/resolve/([^/]+)/([^/]+)$`).exec(req.url ?? '');
    const rev = m && (m[1] === 'main' ? main : m[1]);
    const name = m && decodeURIComponent(m[2]);
    const data = rev && name ? snapshots.get(rev)?.get(name) : undefined;
    if (!data) return void res.writeHead(404).end();
    const etag = name === WEIGHTS ? sha256(data) : sha1(data);
    if (req.method === 'HEAD') {
      if (name === WEIGHTS && !lfs) {
        return void res
          .writeHead(302, {
            Location: `/lfs/${rev}/${name}`,
            'X-Repo-Commit': rev!,
            'X-Linked-Etag': `"${etag}"`,
            'X-Linked-Size': data.length,
            'Content-Length': 0,
          })
          .end();
      }
      return void res.writeHead(200, { 'X-Repo-Commit': rev!, ETag: `"${etag}"`, 'Content-Length': data.length }).end();
    }
    if (name === WEIGHTS && !lfs) return void res.writeHead(302, { Location: `/lfs/${rev}/${name}` }).end();
    if (name === WEIGHTS && opts.html)
      return void res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end('<!doctype html><h1>Bad gateway</h1>');
    let body = data;
    if (name === WEIGHTS && opts.corrupt) (body = Buffer.from(data))[1000] ^= 0xff;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const ifRange = req.headers['if-range'];
    const partial = range && (opts.ignoreIfRange || !ifRange || ifRange === `"${etag}"`);
    const start = partial ? Number(range[1]) : 0;
    if (partial && start >= body.length) return void res.writeHead(416, { 'Content-Range': `bytes */${body.length}` }).end();
    const headers: http.OutgoingHttpHeaders = { ETag: `"${etag}"`, 'Content-Type': 'application/octet-stream' };
    let out = body.subarray(start);
    if (opts.alwaysGzip || /gzip/.test(req.headers['accept-encoding'] ?? '')) {
      out = gzipSync(out);
      headers['Content-Encoding'] = 'gzip';
    }
    if (partial) headers['Content-Range'] = `bytes ${start}-${body.length - 1}/${body.length}`;
    res.writeHead(partial ? 206 : 200, { ...headers, 'Content-Length': out.length });
    if (name === WEIGHTS && cut) {
      cut = false;
      res.write(out.subarray(0, opts.cutAt! - start));
      res.socket!.end(); // flushes what was written, then closes: the client sees a short body
      return;
    }
    res.end(out);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    server,
    log,
    commit,
    snapshot: (rev: string) => snapshots.get(rev)!,
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
  };
}

type Hub = Awaited<ReturnType<typeof hubServer>>;

async function withHub(opts: HubOptions, body: (hub: Hub, dest: string) => Promise<void>): Promise<void> {
  const hub = await hubServer(opts);
  try {
    await body(hub, path.join(tempDir(), 'stories260K'));
  } finally {
    hub.server.close();
  }
}

const weightsGets = (hub: Hub) => hub.log.filter((r) => r.method === 'GET' && r.url.startsWith('/lfs/'));
const original = () => fs.readFileSync(path.join(STORIES, WEIGHTS));

test('an interrupted download resumes with Range and If-Range and loads', () =>
  withHub({ cutAt: 300_000 }, async (hub, dest) => {
    await assert.rejects(downloadModel('karpathy/stories260K', dest, { endpoint: hub.endpoint }));
    assert.equal(fs.existsSync(path.join(dest, WEIGHTS)), false, 'no half-written weights file');
    // What arrived before the cut (the client may not have seen every byte the server wrote).
    const kept = fs.statSync(path.join(dest, `${WEIGHTS}.part`)).size;
    assert.ok(kept > 0 && kept <= 300_000, `${kept} bytes kept`);

    await downloadModel('karpathy/stories260K', dest, { endpoint: hub.endpoint });
    const gets = weightsGets(hub);
    assert.deepEqual(
      gets.map((g) => g.range),
      [undefined, `bytes=${kept}-`],
    );
    assert.equal(gets[1].ifRange, `"${sha256(original())}"`);
    assert.ok(fs.readFileSync(path.join(dest, WEIGHTS)).equals(original()));
    assert.deepEqual(
      fs.readdirSync(dest).filter((f) => f.includes('.part')),
      [],
    );
    const model = await loadModel(dest);
    assert.equal(model.config.hiddenSize, 64);
  }));

test('defect 8: a complete .part file (killed before the rename) finishes instead of failing with HTTP 416', () =>
  withHub({}, async (hub, dest) => {
    await downloadModel('karpathy/stories260K', dest, { endpoint: hub.endpoint });
    // As if killed between the last byte and the rename.
    fs.renameSync(path.join(dest, WEIGHTS), path.join(dest, `${WEIGHTS}.part`));
    fs.writeFileSync(
      path.join(dest, `${WEIGHTS}.part.json`),
      JSON.stringify({ etag: sha256(original()), rangeEtag: `"${sha256(original())}"` }),
    );
    await downloadModel('karpathy/stories260K', dest, { endpoint: hub.endpoint });
    assert.ok(fs.readFileSync(path.join(dest, WEIGHTS)).equals(original()));
  }));

test('defect 8: identity encoding is asked for, and a body gzipped anyway still gives the exact file', async () => {
  await withHub({}, async (hub, dest) => {
    await downloadModel('karpathy/stories260K', dest, { endpoint: hub.endpoint });
    assert.ok(
      hub.log.filter((r) => r.method === 'GET').every((r) => r.encoding === 'identity'),
      'every GET asks for identity encoding',
    );
    assert.ok(fs.readFileSync(path.join(dest, WEIGHTS)).equals(original()));
  });
  await withHub({ alwaysGzip: true }, async (hub, dest) => {
    await downloadModel('karpathy/stories260K', dest, { endpoint: hub.endpoint });
    assert.ok(fs.readFileSync(path.join(dest, WEIGHTS)).equals(original()));
    assert.ok(fs.readFileSync(path.join(dest, 'config.json')).equals(fs.readFileSync(path.join(STORIES, 'config.json'))));
  });
});

test('defect 8: a remote file that changed between attempts is downloaded anew, never spliced', async () => {
  for (const ignoreIfRange of [false, true]) {
    await withHub({ cutAt: 300_000, ignoreIfRange }, async (hub, dest) => {
      await assert.rejects(downloadModel('karpathy/stories260K', dest, { endpoint: hub.endpoint }));
      const changed = Buffer.from(original());
      changed.writeFloatLE(0.5, changed.length - 4);
      hub.commit({ [WEIGHTS]: changed });
      await downloadModel('karpathy/stories260K', dest, { endpoint: hub.endpoint });
      assert.ok(fs.readFileSync(path.join(dest, WEIGHTS)).equals(changed), `ignoreIfRange ${ignoreIfRange}: the new file, whole`);
    });
  }
});

test('defect 8: a body that does not match the SHA-256 the hub publishes is never moved into place', () =>
  withHub({ corrupt: true }, async (hub, dest) => {
    await assert.rejects(
      downloadModel('karpathy/stories260K', dest, { endpoint: hub.endpoint }),
      /model\.safetensors: SHA-256 [0-9a-f]{64} does not match the [0-9a-f]{64} the hub publishes/,
    );
    assert.deepEqual(
      fs.readdirSync(dest).filter((f) => f.startsWith(WEIGHTS)),
      [],
    );
  }));

test('defect 8: an HTML error page is refused, not saved as the weights', () =>
  withHub({ html: true }, async (hub, dest) => {
    await assert.rejects(
      downloadModel('karpathy/stories260K', dest, { endpoint: hub.endpoint }),
      /model\.safetensors: the server sent a web page \("text\/html/,
    );
    assert.equal(fs.existsSync(path.join(dest, WEIGHTS)), false);
  }));

test('defect 8: shard names that leave the model folder are refused', async () => {
  for (const shard of ['../x', '.', '..', '/etc/passwd', 'a/b.safetensors', '.hidden']) {
    await withHub({}, async (hub, dest) => {
      const index = Buffer.from(JSON.stringify({ weight_map: { 'model.embed_tokens.weight': shard } }));
      const rev = hub.commit({ 'model.safetensors.index.json': index });
      hub.snapshot(rev).delete(WEIGHTS);
      await assert.rejects(downloadModel('karpathy/stories260K', dest, { endpoint: hub.endpoint }), /unexpected shard name/, shard);
      assert.ok(!hub.log.some((r) => r.url.includes(encodeURIComponent(shard)) && shard !== '.'), `${shard} was requested`);
    });
  }
});

test('defect 8: every file of one download comes from the commit the revision named at its start', () =>
  // main moves right after the first request: a new tokenizer and new weights.
  withHub({ moveMain: { 'tokenizer.json': Buffer.from('{}'), [WEIGHTS]: Buffer.alloc(16) } }, async (hub, dest) => {
    await downloadModel('karpathy/stories260K', dest, { endpoint: hub.endpoint });
    assert.equal(hub.log[0].rev, 'main');
    const revisions = new Set(hub.log.slice(1).map((r) => r.rev));
    assert.equal(revisions.size, 1, `files came from ${[...revisions]}`);
    assert.match([...revisions][0]!, /^[0-9a-f]{40}$/);
    assert.ok(fs.readFileSync(path.join(dest, WEIGHTS)).equals(original()));
    assert.ok(fs.readFileSync(path.join(dest, 'tokenizer.json')).equals(fs.readFileSync(path.join(STORIES, 'tokenizer.json'))));
  }));

test('a missing repository or a bad id is a clear error', async () => {
  const hub = await hubServer();
  try {
    await assert.rejects(
      downloadModel('nobody/nothing', tempDir(), { endpoint: hub.endpoint }),
      /config\.json: download failed with HTTP 404/,
    );
    await assert.rejects(downloadModel('not an id', tempDir(), { endpoint: hub.endpoint }), /"not an id" is not a Hugging Face model id/);
  } finally {
    hub.server.close();
  }
});

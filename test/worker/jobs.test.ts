// The job queue with compute threads that misbehave: one that never checks its cancel
// flag, one that dies while loading, one that dies before it is ready. Each time the
// queue must settle the job, report a true state and run the next request.

import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ResponseError } from 'vscode-languageserver/node';
import { ErrorCodes } from '../../src/protocol';
import { CANCEL_GRACE_MS, JobQueue } from '../../src/worker/jobs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aligner-jobs-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

/** A compute thread script: `onJob` is the body of the job handler (job in `job`, reply with `reply(result)`). */
function script(name: string, onJob: string, beforeReady = ''): string {
  const file = path.join(tmp, `${name}.js`);
  fs.writeFileSync(
    file,
    `const { parentPort } = require('worker_threads');
     const reply = (job, result) => parentPort.postMessage({ type: 'result', id: job.id, result });
     ${beforeReady}
     parentPort.on('message', (job) => { ${onJob} });
     parentPort.postMessage({ type: 'ready' });`,
  );
  return file;
}

const quiet = {
  log: () => undefined,
  loadProgress: () => undefined,
  delta: () => undefined,
  progress: () => undefined,
  sample: () => undefined,
  started: () => undefined,
};
const model = (p: string) => ({
  name: 'm',
  path: p,
  fingerprint: 'f',
  architecture: 'llama',
  device: 'cpu',
  quantization: 'f32',
  hiddenSize: 1,
  numLayers: 1,
  numHeads: 1,
  vocabSize: 1,
  hasChatTemplate: false,
  loadMs: 0,
});
const load = (id: string) => ({ op: 'load' as const, id, path: '/m', device: 'cpu' as const, quantization: 'f32' as const });
const gen = (id: string) => ({ op: 'generate' as const, id, prompt: 'x', adapter: null, params: {} });

async function code(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ResponseError);
    return err.code;
  }
  return 0;
}

describe('job queue with a misbehaving compute thread', { timeout: 60_000 }, () => {
  test('a job that never checks its cancel flag is stopped; the model is loaded again; the next job runs', async () => {
    const file = script(
      'spin',
      `if (job.op === 'load') reply(job, ${JSON.stringify(model('/m'))}); else if (job.prompt === 'spin') { for (;;); } else reply(job, { text: 'ok' });`,
    );
    const q = new JobQueue(quiet, file);
    await q.enqueue(load('l1'), 'load');
    const spinning = q.enqueue({ ...gen('g1'), prompt: 'spin' }, 'generate');
    const next = q.enqueue(gen('g2'), 'generate');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(q.state(), 'generating');
    const t0 = Date.now();
    assert.equal(q.cancel('g1'), true);
    assert.equal(await code(spinning), ErrorCodes.Cancelled);
    assert.ok(Date.now() - t0 < CANCEL_GRACE_MS + 2000);
    assert.deepEqual(await next, { text: 'ok' });
    assert.equal(q.model?.path, '/m', 'the model was not loaded again');
    await q.shutdown();
  });

  test('a compute thread that dies while loading does not leave the worker loading', async () => {
    const file = script('die-on-load', `if (job.op === 'load') process.exit(7); else reply(job, { text: 'ok' });`);
    const q = new JobQueue(quiet, file);
    assert.equal(await code(q.enqueue(load('l1'), 'load')), ErrorCodes.Internal);
    assert.notEqual(q.state(), 'loading');
    assert.equal(q.modelComing(), false);
    await q.shutdown();
  });

  test('a compute thread that dies before it is ready fails the job instead of waiting for ever', async () => {
    const file = script('die-early', `reply(job, {});`, 'process.exit(3);');
    const q = new JobQueue(quiet, file);
    assert.equal(await code(q.enqueue(load('l1'), 'load')), ErrorCodes.Internal);
    assert.notEqual(q.state(), 'loading');
    await q.shutdown();
  });
});

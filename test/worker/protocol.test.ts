// Protocol tests: the real worker process with the real engine and stories260K,
// driven over JSON-RPC exactly as the extension drives it (no mock engine).

import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CancellationTokenSource, ResponseError } from 'vscode-jsonrpc/node';
import {
  AdapterDeleteRequest,
  AdapterImportRequest,
  AdapterInspectRequest,
  AdapterListRequest,
  CancelRequest,
  ChatDeltaNotification,
  ChatRequest,
  ErrorCodes,
  GenerateRequest,
  LoadModelRequest,
  StatusRequest,
  TrainProgressNotification,
  TrainRequest,
  TrainSampleNotification,
  type ChatDelta,
  type ModelInfo,
  type TrainProgress,
  type TrainSample,
} from '../../src/protocol';
import { TRAIN_SAMPLE } from '../../src/worker/sample';
import { rejectsWith, startWorker, type WorkerHandle } from './client';

const SHARED = path.resolve(__dirname, '..', '..', '..', '..', 'shared');
const STORIES = path.join(SHARED, 'models', 'stories260K');
const SHOUT = path.join(SHARED, 'datasets', 'stories-style', 'shout.train.jsonl');

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aligner-worker-test-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A copy of stories260K whose config differs in a field that shapes the computation: another fingerprint. */
function otherModel(): string {
  const dir = path.join(tempDir(), 'stories260K-other');
  fs.mkdirSync(dir);
  for (const name of fs.readdirSync(STORIES)) {
    const src = path.join(STORIES, name);
    if (fs.statSync(src).isFile()) fs.copyFileSync(src, path.join(dir, name));
  }
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  config.rms_norm_eps = 1e-6;
  config.rope_theta = 20000.0;
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  return dir;
}

describe('worker over JSON-RPC (stories260K)', { timeout: 300_000 }, () => {
  let w: WorkerHandle;
  let model: ModelInfo;
  const lib = tempDir();
  const deltas = new Map<string, string[]>();
  const progress = new Map<string, TrainProgress[]>();
  const samples = new Map<string, TrainSample[]>();

  before(async () => {
    w = await startWorker();
    w.conn.onNotification(ChatDeltaNotification, (d: ChatDelta) => {
      if (!deltas.has(d.requestId)) deltas.set(d.requestId, []);
      deltas.get(d.requestId)!.push(d.delta);
    });
    w.conn.onNotification(TrainProgressNotification, (p: TrainProgress) => {
      if (!progress.has(p.jobId)) progress.set(p.jobId, []);
      progress.get(p.jobId)!.push(p);
    });
    w.conn.onNotification(TrainSampleNotification, (s: TrainSample) => {
      if (!samples.has(s.jobId)) samples.set(s.jobId, []);
      samples.get(s.jobId)!.push(s);
    });
  });

  after(async () => {
    await w?.stop();
  });

  test('status before a model is loaded; requests that need one are refused', async () => {
    const s = await w.conn.sendRequest(StatusRequest);
    assert.equal(s.model, null);
    assert.equal(s.job, null);
    assert.equal(typeof s.pid, 'number');
    await rejectsWith(
      w.conn.sendRequest(ChatRequest, { requestId: 'early', messages: [{ role: 'user', content: 'hi' }], adapter: null }),
      ErrorCodes.NoModel,
    );
  });

  test('load model (with work-done progress)', async () => {
    const reports: unknown[] = [];
    w.conn.onProgress({ __brand: 'ProgressType' } as never, 'load-1', (v: unknown) => reports.push(v));
    model = await w.conn.sendRequest(LoadModelRequest, { path: STORIES, device: 'cpu', workDoneToken: 'load-1' });
    assert.equal(model.name, 'stories260K');
    assert.equal(model.hiddenSize, 64);
    assert.equal(model.device, 'cpu');
    assert.match(model.fingerprint, /^[0-9a-f]{8,}$/);
    const s = await w.conn.sendRequest(StatusRequest);
    assert.equal(s.state, 'idle');
    assert.equal(s.model?.fingerprint, model.fingerprint);
    assert.ok(reports.length >= 2, `expected work-done progress, got ${JSON.stringify(reports)}`);
    // Loading the same folder again is free.
    const again = await w.conn.sendRequest(LoadModelRequest, { path: STORIES });
    assert.equal(again.fingerprint, model.fingerprint);
  });

  test('chat streams deltas that concatenate to the final text', async () => {
    const res = await w.conn.sendRequest(ChatRequest, {
      requestId: 'chat-1',
      messages: [{ role: 'user', content: 'Once upon a time' }],
      adapter: null,
      params: { maxNewTokens: 48, temperature: 0, seed: 1 },
    });
    assert.equal(res.requestId, 'chat-1');
    assert.ok(res.text.length > 0, 'empty answer');
    const streamed = deltas.get('chat-1') ?? [];
    assert.ok(streamed.length > 1, `expected several deltas, got ${streamed.length}`);
    assert.equal(streamed.join(''), res.text);
    assert.ok(['eos', 'length', 'stop'].includes(res.finishReason));
    assert.ok(res.completionTokens > 0 && res.completionTokens <= 48);
    // Greedy is deterministic.
    const again = await w.conn.sendRequest(GenerateRequest, {
      requestId: 'gen-1',
      prompt: 'Once upon a time',
      adapter: null,
      params: { maxNewTokens: 48, temperature: 0 },
    });
    assert.equal(again.text, res.text);
  });

  test('cancel a generation (aligner/cancel and $/cancelRequest)', async () => {
    const first = new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if ((deltas.get('long-1') ?? []).length > 0) {
          clearInterval(t);
          resolve();
        }
      }, 2);
    });
    const started = Date.now();
    const pending = w.conn.sendRequest(ChatRequest, {
      requestId: 'long-1',
      messages: [{ role: 'user', content: 'Tom and Lily' }],
      adapter: null,
      params: { maxNewTokens: 400, temperature: 1, seed: 3, stop: [] },
    });
    await first;
    const c = await w.conn.sendRequest(CancelRequest, { id: 'long-1' });
    assert.equal(c.cancelled, true);
    const res = await pending.catch((err: ResponseError<unknown>) => err);
    if (res instanceof ResponseError) assert.equal(res.code, ErrorCodes.Cancelled);
    else {
      assert.equal(res.finishReason, 'cancelled');
      assert.ok(res.completionTokens < 400);
      assert.equal((deltas.get('long-1') ?? []).join(''), res.text);
    }
    assert.ok(Date.now() - started < 60_000);

    // The standard LSP cancellation works too.
    const cts = new CancellationTokenSource();
    const p2 = w.conn.sendRequest(
      ChatRequest,
      {
        requestId: 'long-2',
        messages: [{ role: 'user', content: 'One day,' }],
        adapter: null,
        params: { maxNewTokens: 400, temperature: 1 },
      },
      cts.token,
    );
    setTimeout(() => cts.cancel(), 30);
    const r2 = await p2.catch((err: ResponseError<unknown>) => err);
    if (r2 instanceof ResponseError) assert.equal(r2.code, ErrorCodes.Cancelled);
    else assert.equal(r2.finishReason, 'cancelled');
    // The worker is still healthy.
    const ok = await w.conn.sendRequest(ChatRequest, {
      requestId: 'after-cancel',
      messages: [{ role: 'user', content: 'Lily' }],
      adapter: null,
      params: { maxNewTokens: 8 },
    });
    assert.ok(ok.completionTokens > 0);
  });

  test('train a 1-token adapter for a few steps on shout.train.jsonl', async () => {
    const res = await w.conn.sendRequest(TrainRequest, {
      jobId: 'train-1',
      name: 'shout-1tok',
      outDir: lib,
      source: { kind: 'jsonl', file: SHOUT },
      options: { tokens: 1, steps: 4, batchSize: 4, maxLen: 128, valSplit: 0.02, seed: 7 },
    });
    const file = path.join(lib, 'shout-1tok.safetensors');
    assert.equal(res.adapter.path, file);
    assert.ok(fs.existsSync(file));
    assert.equal(res.adapter.tokens, 1);
    assert.equal(res.adapter.startLayer, 2);
    assert.equal(res.adapter.compatible, true);
    assert.equal(res.adapter.baseFingerprint, model.fingerprint);
    assert.equal(res.summary.steps, 4);
    assert.ok(res.summary.trainLoss !== null && Number.isFinite(res.summary.trainLoss));
    const ps = progress.get('train-1') ?? [];
    assert.ok(ps.length >= 1, 'no progress notifications');
    const last = ps[ps.length - 1];
    assert.equal(last.totalSteps, 4);
    assert.ok(Number.isFinite(last.loss) && last.tokensPerSec > 0);
    // Before/after sample: the first words of the first story, continued by the base model
    // (step 0) and by the adapter after the last step, with the same seed: exactly what a
    // generate request with those settings answers.
    const ss = samples.get('train-1') ?? [];
    assert.deepEqual(
      ss.map((s) => s.step),
      [0, 4],
    );
    const firstStory = (JSON.parse(fs.readFileSync(SHOUT, 'utf8').split('\n')[0]) as { text: string }).text;
    assert.equal(ss[0].prompt, firstStory.split(' ').slice(0, 4).join(' '));
    for (const [s, adapter] of [
      [ss[0], null],
      [ss[1], file],
    ] as const) {
      const direct = await w.conn.sendRequest(GenerateRequest, {
        requestId: `sample-${s.step}`,
        prompt: s.prompt,
        adapter,
        params: TRAIN_SAMPLE,
      });
      assert.equal(s.text, direct.text, `sample at step ${s.step}`);
      assert.ok(s.text.length > 0);
    }
    assert.notEqual(ss[1].text, ss[0].text, 'the adapter changed nothing in the sample');
    // A second adapter of the same name is refused unless overwrite is set.
    await rejectsWith(
      w.conn.sendRequest(TrainRequest, {
        jobId: 'train-dup',
        name: 'shout-1tok',
        outDir: lib,
        source: { kind: 'jsonl', file: SHOUT },
        options: { tokens: 1, steps: 1 },
      }),
      ErrorCodes.InvalidInput,
      /already exists/,
    );
  });

  test('chat with the trained adapter; switching adapters needs no reload', async () => {
    const file = path.join(lib, 'shout-1tok.safetensors');
    const a = await w.conn.sendRequest(ChatRequest, {
      requestId: 'with-adapter',
      messages: [{ role: 'user', content: 'Once upon a time' }],
      adapter: file,
      params: { maxNewTokens: 24, temperature: 0 },
    });
    assert.ok(a.text.length > 0);
    assert.equal((deltas.get('with-adapter') ?? []).join(''), a.text);
    const b = await w.conn.sendRequest(ChatRequest, {
      requestId: 'no-adapter',
      messages: [{ role: 'user', content: 'Once upon a time' }],
      adapter: null,
      params: { maxNewTokens: 24, temperature: 0 },
    });
    assert.ok(b.text.length > 0);
  });

  test('status is answered within 100 ms while a training step runs; cancel leaves no adapter file', async () => {
    const name = 'cancelled-run';
    const file = path.join(lib, `${name}.safetensors`);
    const pending = w.conn.sendRequest(TrainRequest, {
      jobId: 'train-cancel',
      name,
      outDir: lib,
      source: { kind: 'jsonl', file: SHOUT },
      options: { tokens: 4, steps: 100000, batchSize: 16, maxLen: 256, valSplit: 0.01 },
    });
    const outcome = pending.then(
      () => 'finished',
      (err: ResponseError<unknown>) => err,
    );
    // Wait for the first step to be reported: from then on a step is always running.
    const t0 = Date.now();
    while (!(progress.get('train-cancel') ?? []).length) {
      if (Date.now() - t0 > 120_000) assert.fail('no training progress within 120 s');
      await new Promise((r) => setTimeout(r, 5));
    }
    const latencies: number[] = [];
    for (let i = 0; i < 20; i++) {
      const s0 = performance.now();
      const s = await w.conn.sendRequest(StatusRequest);
      latencies.push(performance.now() - s0);
      assert.equal(s.state, 'training');
      assert.equal(s.job?.id, 'train-cancel');
      await new Promise((r) => setTimeout(r, 10));
    }
    const worst = Math.max(...latencies);
    assert.ok(worst < 100, `status took ${worst.toFixed(1)} ms during training (all: ${latencies.map((l) => l.toFixed(1)).join(', ')})`);
    // A second training job is refused while one runs.
    await rejectsWith(
      w.conn.sendRequest(TrainRequest, { jobId: 'train-busy', name: 'busy', outDir: lib, source: { kind: 'jsonl', file: SHOUT } }),
      ErrorCodes.Busy,
    );
    const c0 = performance.now();
    const c = await w.conn.sendRequest(CancelRequest, { id: 'train-cancel' });
    assert.ok(performance.now() - c0 < 100, 'cancel was not answered within 100 ms');
    assert.equal(c.cancelled, true);
    const err = await outcome;
    assert.ok(err instanceof ResponseError, `training was not cancelled: ${String(err)}`);
    assert.equal(err.code, ErrorCodes.Cancelled);
    assert.equal(fs.existsSync(file), false, 'a cancelled run left an adapter file');
    assert.deepEqual(
      fs.readdirSync(lib).filter((f) => f.startsWith(name)),
      [],
      'a cancelled run left a partial file',
    );
    const s = await w.conn.sendRequest(StatusRequest);
    assert.equal(s.state, 'idle');
  });

  test('adapters: list, inspect, import, delete', async () => {
    const list = await w.conn.sendRequest(AdapterListRequest, { dirs: [lib, path.join(lib, 'missing')] });
    assert.deepEqual(
      list.map((a) => a.name),
      ['shout-1tok'],
    );
    assert.equal(list[0].compatible, true);
    const info = await w.conn.sendRequest(AdapterInspectRequest, { path: list[0].path });
    assert.equal(info.metadata.format, 'aligner/1');
    assert.equal(info.metadata.base_model, 'stories260K');
    assert.equal(info.method, 'sft');
    assert.ok(info.bytes > 0 && info.bytes < 64 * 1024);
    const other = path.join(lib, 'team');
    const imported = await w.conn.sendRequest(AdapterImportRequest, { path: info.path, toDir: other, name: 'team-style' });
    assert.equal(imported.path, path.join(other, 'team-style.safetensors'));
    const both = await w.conn.sendRequest(AdapterListRequest, { dirs: [lib, other] });
    assert.deepEqual(both.map((a) => a.name).sort(), ['shout-1tok', 'team-style']);
    const del = await w.conn.sendRequest(AdapterDeleteRequest, { path: imported.path });
    assert.equal(del.deleted, true);
    assert.equal(fs.existsSync(imported.path), false);
    await rejectsWith(
      w.conn.sendRequest(AdapterDeleteRequest, { path: path.join(SHARED, 'models', 'stories260K', 'config.json') }),
      ErrorCodes.InvalidInput,
    );
  });

  test('an adapter made for another base model is refused', async () => {
    const file = path.join(lib, 'shout-1tok.safetensors');
    const other = await w.conn.sendRequest(LoadModelRequest, { path: otherModel(), device: 'cpu' });
    assert.notEqual(other.fingerprint, model.fingerprint);
    await rejectsWith(
      w.conn.sendRequest(ChatRequest, {
        requestId: 'mismatch',
        messages: [{ role: 'user', content: 'Once' }],
        adapter: file,
        params: { maxNewTokens: 4 },
      }),
      ErrorCodes.AdapterMismatch,
      /another base model|trained for/,
    );
    const info = await w.conn.sendRequest(AdapterInspectRequest, { path: file });
    assert.equal(info.compatible, false);
    assert.match(info.problem ?? '', /stories260K/);
    await rejectsWith(w.conn.sendRequest(AdapterImportRequest, { path: file, toDir: path.join(lib, 'x') }), ErrorCodes.AdapterMismatch);
    // The base model alone still answers.
    const ok = await w.conn.sendRequest(ChatRequest, {
      requestId: 'other-base',
      messages: [{ role: 'user', content: 'Once' }],
      adapter: null,
      params: { maxNewTokens: 4 },
    });
    assert.ok(ok.completionTokens > 0);
  });

  test('the worker stops cleanly on shutdown/exit', async () => {
    const exited = new Promise<number | null>((r) => w.child.once('exit', (code) => r(code)));
    await w.stop();
    assert.equal(await exited.catch(() => 0), w.child.exitCode);
    assert.equal(w.child.exitCode, 0, w.stderr().slice(-2000));
  });
});

// Defects found by hostile inputs and unlucky timing (issue 6), each driven through the
// worker's public JSON-RPC surface with the real engine and stories260K.

import { after, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CancellationTokenSource } from 'vscode-jsonrpc/node';
import {
  AdapterImportRequest,
  ChatRequest,
  ErrorCodes,
  GenerateRequest,
  LoadModelRequest,
  StatusRequest,
  TrainRequest,
} from '../../src/protocol';
import { rejectsWith, startWorker, type WorkerHandle } from './client';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const SHARED = path.resolve(ROOT, '..', 'shared');
const STORIES = path.join(SHARED, 'models', 'stories260K');
const SHOUT = path.join(SHARED, 'datasets', 'stories-style', 'shout.train.jsonl');
const CLI = path.join(ROOT, 'out', 'src', 'cli', 'main.js');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aligner-reliability-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

/** A copy of stories260K with `chatTemplate` in its tokenizer_config.json. */
function withTemplate(name: string, chatTemplate: string): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  for (const f of fs.readdirSync(STORIES))
    if (fs.statSync(path.join(STORIES, f)).isFile()) fs.copyFileSync(path.join(STORIES, f), path.join(dir, f));
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
  cfg.chat_template = chatTemplate;
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(cfg));
  return dir;
}

const workers: WorkerHandle[] = [];
async function worker(): Promise<WorkerHandle> {
  const w = await startWorker();
  workers.push(w);
  return w;
}
after(async () => {
  for (const w of workers) await w.stop();
});

describe('worker reliability (issue 6)', { timeout: 240_000 }, () => {
  test('defect 1: training data with no usable example fails before training, with a step count', async () => {
    const w = await worker();
    await w.conn.sendRequest(LoadModelRequest, { path: STORIES, device: 'cpu' });
    const empty = path.join(tmp, 'empty.jsonl');
    fs.writeFileSync(empty, '{"text":""}\n{"text":""}\n');
    const noAssistant = path.join(tmp, 'no-assistant.jsonl');
    fs.writeFileSync(noAssistant, '{"messages":[{"role":"user","content":"hi"}]}\n');
    for (const file of [empty, noAssistant]) {
      const t0 = Date.now();
      await rejectsWith(
        w.conn.sendRequest(TrainRequest, {
          jobId: `t-${path.basename(file)}`,
          name: 'x',
          outDir: tmp,
          source: { kind: 'jsonl', file },
          options: { steps: 5 },
        }),
        ErrorCodes.InvalidInput,
        /no example to train on/,
      );
      assert.ok(Date.now() - t0 < 30_000);
    }
    // Every prompt longer than the length limit.
    const long = path.join(tmp, 'long.jsonl');
    fs.writeFileSync(long, JSON.stringify({ prompt: 'Once upon a time '.repeat(40), completion: 'the end' }) + '\n');
    await rejectsWith(
      w.conn.sendRequest(TrainRequest, {
        jobId: 't-long',
        name: 'x',
        outDir: tmp,
        source: { kind: 'jsonl', file: long },
        options: { steps: 3, maxLen: 16 },
      }),
      ErrorCodes.InvalidInput,
      /no example to train on/,
    );
    // The worker is free for the next request.
    const r = await w.conn.sendRequest(GenerateRequest, { requestId: 'after', prompt: 'Once', adapter: null, params: { maxNewTokens: 4 } });
    assert.ok(r.completionTokens > 0);
    assert.ok(!fs.existsSync(path.join(tmp, 'x.safetensors')));
  });

  test('defect 5: requests sent right after loadModel on a fresh worker wait for the load', async () => {
    const w = await worker();
    const load = w.conn.sendRequest(LoadModelRequest, { path: STORIES, device: 'cpu' });
    const chat = w.conn.sendRequest(ChatRequest, {
      requestId: 'c1',
      messages: [{ role: 'user', content: 'Once upon a time' }],
      adapter: null,
      params: { maxNewTokens: 4 },
    });
    const gen = w.conn.sendRequest(GenerateRequest, { requestId: 'g1', prompt: 'Once', adapter: null, params: { maxNewTokens: 4 } });
    await load;
    assert.ok((await chat).completionTokens > 0);
    assert.ok((await gen).completionTokens > 0);
  });

  test('defect 5: a load can be cancelled; the worker stays usable', async () => {
    const w = await worker();
    const cts = new CancellationTokenSource();
    const load = w.conn.sendRequest(LoadModelRequest, { path: STORIES, device: 'cpu' }, cts.token);
    setTimeout(() => cts.cancel(), 20);
    await rejectsWith(load, ErrorCodes.Cancelled);
    const s = await w.conn.sendRequest(StatusRequest);
    assert.equal(s.model, null);
    assert.notEqual(s.state, 'loading');
    const m = await w.conn.sendRequest(LoadModelRequest, { path: STORIES, device: 'cpu' });
    assert.equal(m.name, 'stories260K');
  });

  test("defect 5: a chat template that loops is stopped and reported as that model's template error", async () => {
    // 25 million iterations that keep nothing: only the time limit stops them.
    const dir = withTemplate('looping', '{% for i in range(5000) %}{% for j in range(5000) %}{% endfor %}{% endfor %}');
    const w = await worker();
    await w.conn.sendRequest(LoadModelRequest, { path: dir, device: 'cpu' });
    const t0 = Date.now();
    await rejectsWith(
      w.conn.sendRequest(ChatRequest, {
        requestId: 'loop',
        messages: [{ role: 'user', content: 'hi' }],
        adapter: null,
        params: { maxNewTokens: 4 },
      }),
      ErrorCodes.ModelLoad,
      /tokenizer_config\.json: chat_template did not finish/,
    );
    assert.ok(Date.now() - t0 < 30_000, `took ${Date.now() - t0} ms`);
    const s = await w.conn.sendRequest(StatusRequest);
    assert.equal(s.state, 'idle');
  });

  test("a chat template that allocates without end is stopped at its heap limit and reported as that model's template error", async () => {
    // range(1e8) grows one array past any heap: V8 aborts the process that renders it (node#47224).
    const dir = withTemplate('hungry', '{% for i in range(100000000) %}{% endfor %}');
    const w = await worker();
    await w.conn.sendRequest(LoadModelRequest, { path: dir, device: 'cpu' });
    await rejectsWith(
      w.conn.sendRequest(ChatRequest, {
        requestId: 'hungry',
        messages: [{ role: 'user', content: 'hi' }],
        adapter: null,
        params: { maxNewTokens: 4 },
      }),
      ErrorCodes.ModelLoad,
      /tokenizer_config\.json: chat_template needed more than 64 MB of memory/,
    );
    const s = await w.conn.sendRequest(StatusRequest);
    assert.equal(s.state, 'idle');
  });

  test('defect 7: an imported adapter may be called "my-style (1)"; an existing name is never replaced silently', async () => {
    const w = await worker();
    await w.conn.sendRequest(LoadModelRequest, { path: STORIES, device: 'cpu' });
    const lib = path.join(tmp, 'lib');
    const trained = await w.conn.sendRequest(TrainRequest, {
      jobId: 'tiny',
      name: 'my-style',
      outDir: lib,
      source: { kind: 'jsonl', file: SHOUT },
      options: { steps: 2, tokens: 2 },
    });
    const before = fs.readFileSync(trained.adapter.path);
    const copy = await w.conn.sendRequest(AdapterImportRequest, { path: trained.adapter.path, toDir: lib, name: 'my-style (1)' });
    assert.equal(copy.name, 'my-style (1)');
    await rejectsWith(
      w.conn.sendRequest(AdapterImportRequest, { path: copy.path, toDir: lib, name: 'my-style' }),
      ErrorCodes.InvalidInput,
      /already exists/,
    );
    assert.deepEqual(fs.readFileSync(trained.adapter.path), before);
    await rejectsWith(
      w.conn.sendRequest(AdapterImportRequest, { path: copy.path, toDir: lib, name: '../evil' }),
      ErrorCodes.InvalidInput,
      /Invalid adapter name/,
    );
  });

  test('defect 9: a prompt longer than the context is an invalid-input error; a long chat keeps the turns that fit', async () => {
    const dir = withTemplate(
      'plain-chat',
      '{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}',
    );
    const w = await worker();
    await w.conn.sendRequest(LoadModelRequest, { path: dir, device: 'cpu' });
    const long = 'Once upon a time there was a little dog. '.repeat(80);
    await rejectsWith(
      w.conn.sendRequest(GenerateRequest, { requestId: 'too-long', prompt: long, adapter: null, params: { maxNewTokens: 4 } }),
      ErrorCodes.InvalidInput,
      /context is 512 tokens/,
    );
    await rejectsWith(
      w.conn.sendRequest(ChatRequest, {
        requestId: 'too-long-chat',
        messages: [{ role: 'user', content: long }],
        adapter: null,
        params: { maxNewTokens: 4 },
      }),
      ErrorCodes.InvalidInput,
      /context is 512 tokens/,
    );
    const history = [];
    for (let i = 0; i < 12; i++)
      history.push(
        { role: 'user' as const, content: `Tell me story ${i}.` },
        { role: 'assistant' as const, content: 'Lily and Tom played in the park all day long. '.repeat(4) },
      );
    history.push({ role: 'user' as const, content: 'And then?' });
    const r = await w.conn.sendRequest(ChatRequest, {
      requestId: 'long-history',
      messages: history,
      adapter: null,
      params: { maxNewTokens: 16 },
    });
    assert.ok(r.promptTokens < 512 - 16 + 1, `prompt of ${r.promptTokens} tokens`);
    assert.ok(r.promptTokens > 200, `only ${r.promptTokens} prompt tokens kept: the budget should fill the context`);
  });

  test('defect 9: the CLI refuses a prompt longer than the context without echoing it', () => {
    const long = 'Once upon a time there was a little dog. '.repeat(80);
    let out = '';
    let err = '';
    try {
      execFileSync(process.execPath, [CLI, 'generate', '--model', STORIES, '--prompt', long, '--max-new-tokens', '4'], {
        encoding: 'utf8',
        stdio: 'pipe',
      });
      assert.fail('expected a non-zero exit');
    } catch (e) {
      const x = e as { stdout: string; stderr: string; status: number };
      out = x.stdout;
      err = x.stderr;
      assert.equal(x.status, 1);
    }
    assert.equal(out, '');
    assert.equal(err.trim().split('\n').length, 1, err);
    assert.match(err, /context is 512 tokens/);
    assert.ok(err.length < 300, `error of ${err.length} characters`);
  });

  test('defect 14: no product code reads a test-only environment variable; status gives the pid', async () => {
    const files = execFileSync('git', ['ls-files', 'src', 'kernels'], { cwd: ROOT, encoding: 'utf8' })
      .split('\n')
      .filter((f) => /\.(ts|js|mjs)$/.test(f));
    const offenders = files.filter((f) => /ALIGNER_TEST_|ALIGNER_WORKER_PID_FILE/.test(fs.readFileSync(path.join(ROOT, f), 'utf8')));
    assert.deepEqual(offenders, []);
    const w = await worker();
    assert.equal((await w.conn.sendRequest(StatusRequest)).pid, w.child.pid);
  });
});

// aligner/refine and the adapter history over JSON-RPC, with the real worker and stories260K:
// pairs made from the model's own chat answers (their prompt as the worker reports it),
// refined from and against the adapter, the previous version kept, listed and put back.

import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import {
  AdapterHistoryRequest,
  AdapterRevertRequest,
  CancelRequest,
  ChatRequest,
  ErrorCodes,
  LoadModelRequest,
  RefineRequest,
  TrainProgressNotification,
  TrainRequest,
  type TrainProgress,
} from '../../src/protocol';
import { historyDir } from '../../src/adapter/history';
import { STORIES, STYLE_DIR, tempDir } from '../model/paths';
import { rejectsWith, startWorker, type WorkerHandle } from './client';

/** The stories-style shout rule, simplified: a sentence-final "." becomes "!". */
const shout = (text: string): string => text.replace(/\.(?=[ \n"]|$)/g, '!');

describe('aligner/refine and the adapter history (stories260K)', { timeout: 300_000 }, () => {
  let w: WorkerHandle;
  const dir = tempDir();
  const adapter = path.join(dir, 'style.safetensors');
  const pairsFile = path.join(dir, 'pairs.jsonl');
  const progress: TrainProgress[] = [];

  before(async () => {
    w = await startWorker();
    w.conn.onNotification(TrainProgressNotification, (p: TrainProgress) => progress.push(p));
    await w.conn.sendRequest(LoadModelRequest, { path: STORIES });
    await w.conn.sendRequest(TrainRequest, {
      jobId: 'sft',
      name: 'style',
      outDir: dir,
      source: { kind: 'jsonl', file: path.join(STYLE_DIR, 'shout.train.jsonl') },
      options: { tokens: 2, steps: 2, batchSize: 4, maxLen: 128, valSplit: 0 },
    });
  });

  after(async () => {
    await w?.stop();
  });

  test('chat answers report the prompt the model continued: for stories260K (no chat template), the last user message', async () => {
    const lines: string[] = [];
    for (const [i, start] of ['Once upon a time', 'Tom had a red ball', 'The sun was hot', 'Lily saw a cat'].entries()) {
      const res = await w.conn.sendRequest(ChatRequest, {
        requestId: `c${i}`,
        messages: [
          { role: 'user', content: 'An earlier turn' },
          { role: 'assistant', content: 'An earlier answer.' },
          { role: 'user', content: start },
        ],
        adapter,
        params: { maxNewTokens: 40, seed: i, temperature: 0.8 },
      });
      assert.equal(res.prompt, start);
      const rejected = res.text.includes('.') ? res.text : `${res.text}.`;
      // Two pairs per answer, so that a quarter of them can be held out.
      lines.push(JSON.stringify({ prompt: res.prompt, chosen: shout(rejected), rejected, adapter: 'style', base_fingerprint: 'x' }));
      lines.push(JSON.stringify({ prompt: res.prompt, chosen: `${shout(rejected)} The end!`, rejected }));
    }
    fs.writeFileSync(pairsFile, `${lines.join('\n')}\n`);
  });

  test('refine: DPO from the adapter, before/after accuracy on held-out pairs, the previous version kept', async () => {
    const original = fs.readFileSync(adapter);
    const res = await w.conn.sendRequest(RefineRequest, { jobId: 'refine-1', adapter, pairs: pairsFile, options: { steps: 3 } });
    assert.equal(res.summary.method, 'dpo');
    assert.equal(res.summary.steps, 3);
    assert.equal(res.summary.examples, 8);
    assert.equal(res.summary.valExamples, 2, 'a quarter of 8 pairs held out');
    assert.ok(res.summary.preferenceAccuracy, 'no preference accuracy');
    for (const x of [res.summary.preferenceAccuracy.before, res.summary.preferenceAccuracy.after]) assert.ok(x >= 0 && x <= 1);
    assert.equal(res.adapter.path, adapter);
    assert.equal(res.adapter.method, 'dpo');
    assert.equal(res.adapter.tokens, 2, 'refining keeps the shape of the adapter');
    assert.ok(res.adapter.metadata.preference_accuracy);
    assert.notDeepEqual(fs.readFileSync(adapter), original, 'the adapter was not replaced');
    // The previous version is kept, byte for byte, in the adapter's history.
    assert.equal(path.dirname(res.previous.path), historyDir(adapter));
    assert.deepEqual(fs.readFileSync(res.previous.path), original);
    assert.equal(res.previous.info.method, 'sft');
    assert.ok(
      progress.some((p) => p.jobId === 'refine-1' && p.step === 3 && p.totalSteps === 3),
      'no progress notifications',
    );
    const history = await w.conn.sendRequest(AdapterHistoryRequest, { path: adapter });
    assert.deepEqual(
      history.map((v) => v.path),
      [res.previous.path],
    );
    assert.ok(!Number.isNaN(Date.parse(history[0].kept)));
  });

  test('revert puts a version back and keeps the current content as a version', async () => {
    const [version] = await w.conn.sendRequest(AdapterHistoryRequest, { path: adapter });
    const refined = fs.readFileSync(adapter);
    const res = await w.conn.sendRequest(AdapterRevertRequest, { path: adapter, version: version.path });
    assert.deepEqual(fs.readFileSync(adapter), fs.readFileSync(version.path));
    assert.equal(res.adapter.method, 'sft');
    assert.deepEqual(fs.readFileSync(res.kept.path), refined);
    const history = await w.conn.sendRequest(AdapterHistoryRequest, { path: adapter });
    assert.deepEqual(
      history.map((v) => v.path),
      [res.kept.path, version.path],
      'newest first, nothing lost',
    );
    // Only versions of this adapter can be put back.
    await rejectsWith(
      w.conn.sendRequest(AdapterRevertRequest, { path: adapter, version: pairsFile }),
      ErrorCodes.InvalidInput,
      /is not a version of/,
    );
    // Answers use the reverted adapter at once.
    const answer = await w.conn.sendRequest(ChatRequest, {
      requestId: 'after-revert',
      messages: [{ role: 'user', content: 'Once upon a time' }],
      adapter,
      params: { maxNewTokens: 8, seed: 1 },
    });
    assert.ok(answer.text.length > 0);
  });

  test('a cancelled refinement changes nothing and keeps no version', async () => {
    const before = fs.readFileSync(adapter);
    const versions = fs.readdirSync(historyDir(adapter)).length;
    const running = w.conn.sendRequest(RefineRequest, {
      jobId: 'refine-cancel',
      adapter,
      pairs: pairsFile,
      options: { steps: 10_000, batchSize: 1 },
    });
    // Cancelled once it is training (its first step reported).
    await new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (progress.some((p) => p.jobId === 'refine-cancel')) {
          clearInterval(check);
          resolve();
        }
      }, 20);
    });
    assert.deepEqual(await w.conn.sendRequest(CancelRequest, { id: 'refine-cancel' }), { cancelled: true });
    await rejectsWith(running, ErrorCodes.Cancelled, /Refinement cancelled/);
    assert.deepEqual(fs.readFileSync(adapter), before);
    assert.equal(fs.readdirSync(historyDir(adapter)).length, versions);
  });

  test('a corrupt pairs file is a one-line error naming the file and the line; the adapter is untouched', async () => {
    const bad = path.join(dir, 'bad.jsonl');
    const good = fs.readFileSync(pairsFile, 'utf8').split('\n').slice(0, 2).join('\n');
    fs.writeFileSync(bad, `${good}\n{"prompt": "x", "chosen": "y", "rejected"\n`);
    const before = fs.readFileSync(adapter);
    const versions = fs.readdirSync(historyDir(adapter)).length;
    const err = await rejectsWith(
      w.conn.sendRequest(RefineRequest, { jobId: 'refine-bad', adapter, pairs: bad }),
      ErrorCodes.InvalidInput,
      /bad\.jsonl:3: invalid JSON/,
    );
    assert.ok(!err.message.includes('\n'), err.message);
    // Records of another form, and a missing file.
    const texts = path.join(dir, 'texts.jsonl');
    fs.writeFileSync(texts, '{"text": "Once upon a time."}\n');
    await rejectsWith(
      w.conn.sendRequest(RefineRequest, { jobId: 'refine-texts', adapter, pairs: texts }),
      ErrorCodes.InvalidInput,
      /texts\.jsonl:1: refining needs \{"prompt","chosen","rejected"\} records/,
    );
    await rejectsWith(
      w.conn.sendRequest(RefineRequest, { jobId: 'refine-none', adapter, pairs: path.join(dir, 'missing.jsonl') }),
      ErrorCodes.InvalidInput,
      /missing\.jsonl/,
    );
    await rejectsWith(
      w.conn.sendRequest(RefineRequest, { jobId: 'refine-opts', adapter, pairs: pairsFile, options: { lr: -1 } }),
      ErrorCodes.InvalidInput,
      /refine params\.options\.lr must be a number > 0/,
    );
    assert.deepEqual(fs.readFileSync(adapter), before);
    assert.equal(fs.readdirSync(historyDir(adapter)).length, versions, 'a failed refinement kept a version');
  });
});

// `npm run bench`: tokens/s and peak RSS of our engine against a PyTorch CPU reference
// (test/bench/torch_ref.py) for an Aligner training step (batch 8 x 256), prefill (512 tokens,
// last-position logits) and greedy decode (128 new tokens after a 16-token prompt), with the
// base in f32, q8 and q4 (our q8/q4 rows compare against PyTorch f32: it has no int4 CPU path);
// and decode tok/s after 128, 1,024 and 4,096 tokens of context ("context" mode). Prefill, decode
// and context also run on llama.cpp (node-llama-cpp's prebuilt CPU build, test/bench/llamacpp.ts) with
// the same model written as GGUF F32 / Q8_0 / Q4_0 for our f32 / q8 / q4, the same token ids and
// thread count: `vs_llamacpp` is ours / llama.cpp (above 1: we are faster). Ours runs with a
// one-token adapter (its branch is part of our cost), llama.cpp runs the base alone, so their
// greedy ids are not compared. llama.cpp's threads spin at barriers: on a loaded machine they
// lose far more than ours, so read these rows only at a low load average.
//
// stdout: one JSON object per line (results, skips, errors); progress goes to stderr.
// Each (implementation, model, mode) runs in its own child process so that peak RSS is its own.
//
// Environment:
//   BENCH_MODELS=stories260K,tiny15m,smol135m,qwen05b   models to run (default all four)
//   BENCH_MODES=train,prefill,decode,context    modes to run (default all four)
//   BENCH_QUANTS=f32,q8,q4                      our base's storage (default all three)
//   BENCH_CONTEXTS=128,1024,4096                context lengths of the "context" mode
//   BENCH_DEVICE=cpu|webgpu|cuda                our execution provider (default cpu)
//   BENCH_THREADS=n                             torch threads (default: the machine's cores)
//   BENCH_QUICK=1                               one timed rep everywhere (smoke test)
//   BENCH_SKIP_TORCH=1 / BENCH_SKIP_OURS=1 / BENCH_SKIP_LLAMACPP=1   leave one side out
//   BENCH_PROFILE=1                             Engine.create(model, { device: 'cpu', profile: true })
//   BENCH_PYTHON=/usr/bin/python3               python with torch
//   BENCH_TIMEOUT_S=n                           per child process limit (default 900 s)

import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Engine, EngineOptions } from '../../src/engine/engine';
import type { AdapterWeights } from '../../src/adapter/types';
import type { TokenBatch } from '../../src/data/batches';
import { QUANTIZATIONS } from '../../src/engine/quantize';
import { generate } from '../../src/generate/generate';
import { loadModel } from '../../src/model/load';
import { AdamW } from '../../src/train/adamw';
import { ensureRandomModel, RANDOM_MODELS } from './models';
import { childLlamaCpp, ensureGguf, GGUF_TYPE, LlamaSpec } from './llamacpp';
import type { StoriesType } from '../model/gguf_writer';
import { median } from './stats';

type Mode = 'train' | 'prefill' | 'decode' | 'context';
const MODES: Mode[] = ['train', 'prefill', 'decode', 'context'];

/** Repository root: this file runs as out/test/bench/bench.js. */
const ROOT = path.resolve(__dirname, '..', '..', '..');
const STORIES = path.resolve(ROOT, '..', 'shared', 'models', 'stories260K');
const TORCH_REF = path.join(ROOT, 'test', 'bench', 'torch_ref.py');
const PYTHON = process.env.BENCH_PYTHON || '/usr/bin/python3';

const TRAIN_BATCH = 8;
const TRAIN_SEQ = 256;
const PREFILL_LEN = 512;
const PROMPT_LEN = 16;
const NEW_TOKENS = 128;
/** Tokens decoded (and timed) after each context of the "context" mode. */
const CONTEXT_NEW_TOKENS = 32;
const ADAPTER_TOKENS = 1;
const START_LAYER = 2;

interface Reps {
  warmup: number;
  reps: number;
}

/** Warm-up and timed repetitions per model and mode (smol135m gets fewer: ~15 min for the whole bench). */
function repsFor(model: string, mode: Mode): Reps {
  if (process.env.BENCH_QUICK === '1') return { warmup: mode === 'decode' ? 0 : 1, reps: 1 };
  const big = model === 'smol135m' || model === 'qwen05b';
  const small = model === 'stories260K';
  switch (mode) {
    case 'train':
      return { warmup: 1, reps: big ? 3 : 5 };
    case 'prefill':
      return { warmup: 1, reps: big ? 3 : 5 };
    case 'context':
      return { warmup: 0, reps: 1 };
    case 'decode':
      // decode: a short warm-up generation, then 128 tokens (once on the bigger models).
      return { warmup: 1, reps: small ? 3 : 1 };
  }
}

function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

function emit(obj: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// ------------------------------------------------------------------ deterministic inputs

/** mulberry32; the same seeds give the same ids on every run. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomIds(n: number, vocab: number, seed: number): number[] {
  const r = prng(seed);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(3 + Math.floor(r() * (vocab - 3)));
  return out;
}

function randomAdapter(hidden: number, layers: number, heads: number, seed: number): AdapterWeights {
  const r = prng(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const prefix = new Float32Array(ADAPTER_TOKENS * hidden);
  for (let i = 0; i < prefix.length; i++) prefix[i] = normal();
  const gates = new Float32Array((layers - START_LAYER) * heads);
  for (let i = 0; i < gates.length; i++) gates[i] = (r() - 0.5) * 0.2;
  return { prefix, gates, tokens: ADAPTER_TOKENS, startLayer: START_LAYER };
}

/** 8 x 256 random ids; every position but the last of each row scored against the next token. */
function trainBatch(vocab: number, seed: number): TokenBatch {
  const B = TRAIN_BATCH;
  const T = TRAIN_SEQ;
  const ids = randomIds(B * T, vocab, seed);
  const inputIds = Int32Array.from(ids);
  const targets = new Int32Array(B * T);
  const mask = new Uint8Array(B * T);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T - 1; t++) {
      targets[b * T + t] = ids[b * T + t + 1];
      mask[b * T + t] = 1;
    }
  }
  return { rows: B, length: T, inputIds, targets, mask };
}

function argmax(xs: Float32Array): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
}

// ------------------------------------------------------------------ our engine (child side)

interface ChildSpec {
  dir: string;
  mode: Mode;
  reps: Reps;
  threads: number;
  quantization: (typeof QUANTIZATIONS)[number];
  device: 'cpu' | 'webgpu' | 'cuda';
  contexts: number[];
}

async function childOurs({
  dir: modelDir,
  mode,
  reps,
  threads,
  quantization,
  device,
  contexts,
}: ChildSpec): Promise<Record<string, unknown>> {
  const t0 = performance.now();
  const model = await loadModel(modelDir);
  const opts: EngineOptions = { device, threads, log, quantization };
  // onnxruntime's per-op profile (chrome trace JSON, written to the cwd = repo root).
  if (process.env.BENCH_PROFILE === '1') opts.profile = true;
  const engine = await Engine.create(model, opts);
  const loadS = (performance.now() - t0) / 1000;
  const rssAfterLoad = process.resourceUsage().maxRSS / 1024;
  const c = model.config;
  log(`ours: loaded ${model.name} (${quantization}) in ${loadS.toFixed(2)}s (rss ${rssAfterLoad.toFixed(0)} MB), mode ${mode}`);
  const adapter = randomAdapter(c.hiddenSize, c.numLayers, c.numHeads, 1234);
  const times: number[] = [];
  let tokens: number;
  const extra: Record<string, unknown> = {};
  try {
    if (mode === 'train') {
      const batch = trainBatch(c.vocabSize, 99);
      // SPEC §2 SFT defaults; timed together with the step, as torch times backward + step.
      const opt = new AdamW([adapter.prefix, adapter.gates], { lr: 9e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.02 });
      const losses: number[] = [];
      for (let i = 0; i < reps.warmup + reps.reps; i++) {
        const t = performance.now();
        const res = await engine.sftStep(batch, adapter);
        opt.update([res.gradPrefix, res.gradGates]);
        const dt = (performance.now() - t) / 1000;
        losses.push(res.loss);
        if (i >= reps.warmup) times.push(dt);
        log(`ours train step ${i}${i < reps.warmup ? ' (warm-up)' : ''} ${dt.toFixed(3)}s loss ${res.loss.toFixed(4)}`);
      }
      tokens = TRAIN_BATCH * TRAIN_SEQ;
      Object.assign(extra, { batch: TRAIN_BATCH, seq: TRAIN_SEQ, loss_first: losses[0], loss_last: losses[losses.length - 1] });
    } else if (mode === 'prefill') {
      const ids = benchIds(c.vocabSize, []).prefillIds;
      for (let i = 0; i < reps.warmup + reps.reps; i++) {
        const t = performance.now();
        const out = await engine.logits([ids], [adapter], { lastOnly: true });
        const dt = (performance.now() - t) / 1000;
        extra.argmax = argmax(out[0].subarray(out[0].length - c.vocabSize));
        if (i >= reps.warmup) times.push(dt);
        log(`ours prefill ${i}${i < reps.warmup ? ' (warm-up)' : ''} ${dt.toFixed(3)}s`);
      }
      tokens = PREFILL_LEN;
      extra.prefill_len = PREFILL_LEN;
    } else if (mode === 'context') {
      // Decode cost at growing context: prefill (not timed), then CONTEXT_NEW_TOKENS greedy steps.
      const perContext: Record<string, number> = {};
      for (const context of contexts.filter((n) => n + CONTEXT_NEW_TOKENS <= c.maxPositions)) {
        const { state, logits } = await engine.prefill([benchIds(c.vocabSize, [context]).contextIds[context]], [adapter]);
        let next = argmax(logits[0]);
        const t = performance.now();
        for (let i = 0; i < CONTEXT_NEW_TOKENS; i++) next = argmax((await engine.decode(state, [next]))[0]);
        const dt = (performance.now() - t) / 1000;
        perContext[context] = CONTEXT_NEW_TOKENS / dt;
        times.push(dt);
        log(`ours decode after ${context} tokens: ${(CONTEXT_NEW_TOKENS / dt).toFixed(2)} tok/s`);
      }
      tokens = CONTEXT_NEW_TOKENS;
      Object.assign(extra, { decode_tokens_per_s_at_context: perContext, new_tokens: CONTEXT_NEW_TOKENS });
    } else {
      const prompt = benchIds(c.vocabSize, []).promptIds;
      for (let i = 0; i < reps.warmup; i++) {
        await generate(engine, prompt, adapter, { maxNewTokens: Math.min(8, NEW_TOKENS), temperature: 0, stopAtEos: false });
      }
      let out: number[] = [];
      for (let i = 0; i < reps.reps; i++) {
        const t = performance.now();
        out = (await generate(engine, prompt, adapter, { maxNewTokens: NEW_TOKENS, temperature: 0, stopAtEos: false })).ids;
        const dt = (performance.now() - t) / 1000;
        times.push(dt);
        log(`ours decode ${i} ${out.length} tokens ${dt.toFixed(3)}s`);
      }
      if (out.length !== NEW_TOKENS) throw new Error(`generate returned ${out.length} ids, expected ${NEW_TOKENS}`);
      tokens = NEW_TOKENS;
      Object.assign(extra, { prompt_len: PROMPT_LEN, new_tokens: NEW_TOKENS, ids: out });
    }
  } finally {
    await engine.dispose();
  }
  const med = median(times);
  return {
    impl: 'ours',
    model: model.name,
    mode,
    quantization,
    tokens_per_s: tokens / med,
    median_s: med,
    times_s: times,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    rss_after_load_mb: rssAfterLoad,
    load_s: loadS,
    profile: process.env.BENCH_PROFILE === '1',
    device: engine.device,
    threads,
    ...extra,
  };
}

// ------------------------------------------------------------------ parent side

interface ChildResult {
  ok: boolean;
  result?: Record<string, unknown>;
  error?: string;
}

/** Runs a child, passes its stderr through, and takes the last JSON line of its stdout. */
function runChild(cmd: string, args: string[], timeoutS: number, cwd = ROOT): Promise<ChildResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let errTail = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      process.stderr.write(d);
      errTail = (errTail + d.toString()).slice(-2000);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutS * 1000);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ ok: false, error: `${cmd}: ${e.message}` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const lines = out
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l.startsWith('{'));
      let parsed: Record<string, unknown> | undefined;
      try {
        parsed = lines.length ? JSON.parse(lines[lines.length - 1]) : undefined;
      } catch {
        parsed = undefined;
      }
      if (timedOut) return resolve({ ok: false, error: `timed out after ${timeoutS}s` });
      if (parsed && parsed.error) return resolve({ ok: false, error: String(parsed.error) });
      if (code !== 0 || !parsed) {
        const last = errTail.trim().split('\n').slice(-3).join(' | ');
        return resolve({ ok: false, error: `exit ${code ?? signal}: ${last || 'no output'}` });
      }
      resolve({ ok: true, result: parsed });
    });
  });
}

function torchAvailable(): { ok: boolean; why?: string; version?: string } {
  const r = spawnSync(PYTHON, ['-c', 'import torch, numpy; print(torch.__version__)'], { encoding: 'utf8' });
  if (r.error) return { ok: false, why: `${PYTHON}: ${r.error.message}` };
  if (r.status !== 0) return { ok: false, why: `${PYTHON} cannot import torch: ${(r.stderr || '').trim().split('\n').pop()}` };
  return { ok: true, version: r.stdout.trim() };
}

function list(env: string | undefined, all: string[]): string[] {
  if (!env) return all;
  const want = env
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return all.filter((x) => want.includes(x));
}

function round(x: unknown, digits = 3): number | null {
  if (typeof x !== 'number' || !Number.isFinite(x)) return null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

async function main(): Promise<void> {
  const started = Date.now();
  const threads = Number(process.env.BENCH_THREADS) || os.cpus().length;
  const timeoutS = Number(process.env.BENCH_TIMEOUT_S) || 900;
  const models = list(process.env.BENCH_MODELS, ['stories260K', ...RANDOM_MODELS.map((m) => m.name)]);
  const modes = list(process.env.BENCH_MODES, MODES) as Mode[];
  const quants = list(process.env.BENCH_QUANTS, [...QUANTIZATIONS]) as (typeof QUANTIZATIONS)[number][];
  const device = (process.env.BENCH_DEVICE || 'cpu') as ChildSpec['device'];
  const contexts = (process.env.BENCH_CONTEXTS || '128,1024,4096').split(',').map(Number);

  const dirs = new Map<string, string>();
  if (models.includes('stories260K')) dirs.set('stories260K', STORIES);
  for (const spec of RANDOM_MODELS) {
    if (models.includes(spec.name)) dirs.set(spec.name, ensureRandomModel(spec, STORIES, log));
  }

  const torch = process.env.BENCH_SKIP_TORCH === '1' ? { ok: false, why: 'BENCH_SKIP_TORCH=1' } : torchAvailable();
  if (!torch.ok) emit({ event: 'torch_skipped', reason: torch.why });
  else log(`torch ${torch.version} via ${PYTHON}, ${threads} threads`);

  const llamaWhy = process.env.BENCH_SKIP_LLAMACPP === '1' ? 'BENCH_SKIP_LLAMACPP=1' : null;
  if (llamaWhy) emit({ event: 'llamacpp_skipped', reason: llamaWhy });

  let oursWhy: string | null = null;
  if (process.env.BENCH_SKIP_OURS === '1') oursWhy = 'BENCH_SKIP_OURS=1';
  if (oursWhy) emit({ event: 'ours_skipped', reason: oursWhy });

  for (const [name, dir] of dirs) {
    for (const mode of modes) {
      const reps = repsFor(name, mode);
      const loadAvg = os.loadavg()[0];
      log(`== ${name} ${mode} (warm-up ${reps.warmup}, timed ${reps.reps})`);
      // PyTorch runs f32 once per model and mode; every quantization of ours is compared with it.
      let tr: ChildResult = { ok: false, error: torch.why ?? 'skipped' };
      if (torch.ok && mode !== 'context') {
        tr = await runChild(
          PYTHON,
          [
            TORCH_REF,
            '--model',
            dir,
            '--mode',
            mode,
            '--threads',
            String(threads),
            '--warmup',
            String(reps.warmup),
            '--reps',
            String(reps.reps),
            '--batch',
            String(TRAIN_BATCH),
            '--seq',
            String(TRAIN_SEQ),
            '--prefill-len',
            String(PREFILL_LEN),
            '--prompt-len',
            String(PROMPT_LEN),
            '--new-tokens',
            String(NEW_TOKENS),
            '--tokens',
            String(ADAPTER_TOKENS),
            '--start-layer',
            String(START_LAYER),
          ],
          timeoutS,
        );
      }
      for (const quantization of quants) {
        let ours: ChildResult = { ok: false, error: oursWhy ?? 'skipped' };
        let profileDir: string | null = null;
        if (!oursWhy) {
          // onnxruntime writes its profile into the cwd: give each child its own folder outside the repo.
          if (process.env.BENCH_PROFILE === '1') {
            profileDir = path.join(os.tmpdir(), 'aligner-bench-profile', `${name}-${mode}-${quantization}`);
            fs.rmSync(profileDir, { recursive: true, force: true });
            fs.mkdirSync(profileDir, { recursive: true });
          }
          const spec: ChildSpec = { dir, mode, reps, threads, quantization, device, contexts };
          ours = await runChild(process.execPath, [__filename, '--child', JSON.stringify(spec)], timeoutS, profileDir ?? ROOT);
        }
        let lc: ChildResult = { ok: false, error: llamaWhy ?? 'no training on llama.cpp' };
        if (!llamaWhy && mode !== 'train') {
          const spec: LlamaSpec & { dir: string; type: StoriesType } = {
            dir,
            type: GGUF_TYPE[quantization],
            gguf: '',
            mode,
            reps,
            threads,
            ...benchIds(
              vocabOf(dir),
              contexts.filter((n) => n + CONTEXT_NEW_TOKENS <= maxPositionsOf(dir)),
            ),
          };
          lc = await runChild(process.execPath, [__filename, '--llama-child', JSON.stringify(spec)], timeoutS);
        }
        const o = ours.result ?? {};
        const t = tr.result ?? {};
        const l = lc.result ?? {};
        const lTps = l.tokens_per_s as number | undefined;
        const oTps = o.tokens_per_s as number | undefined;
        const tTps = t.tokens_per_s as number | undefined;
        const oRss = o.peak_rss_mb as number | undefined;
        const tRss = t.peak_rss_mb as number | undefined;
        const line: Record<string, unknown> = {
          model: name,
          mode,
          quantization,
          device,
          ours_tokens_per_s: round(oTps, 2),
          torch_tokens_per_s: round(tTps, 2),
          ratio: oTps && tTps ? round(oTps / tTps, 3) : null,
          llamacpp_tokens_per_s: round(lTps, 2),
          llamacpp_type: mode === 'train' ? null : GGUF_TYPE[quantization],
          vs_llamacpp: oTps && lTps ? round(oTps / lTps, 3) : null,
          ours_peak_rss_mb: round(oRss, 1),
          torch_peak_rss_mb: round(tRss, 1),
          rss_ratio: oRss && tRss ? round(oRss / tRss, 3) : null,
          threads,
          blas: (t.blas as string | undefined) ?? null,
          ours_median_s: round(o.median_s, 4),
          torch_median_s: round(t.median_s, 4),
          warmup: reps.warmup,
          reps: reps.reps,
          // Other work on the machine skews every number here: the 1-minute load average before the pair ran.
          load_avg_1m: round(loadAvg, 2),
        };
        // Both sides get the same ids and adapter, so their results must agree (a wrong fast engine is no win).
        if (o.decode_tokens_per_s_at_context) line.decode_tokens_per_s_at_context = o.decode_tokens_per_s_at_context;
        const lAt = l.decode_tokens_per_s_at_context as Record<string, number> | undefined;
        if (lAt) {
          line.llamacpp_decode_tokens_per_s_at_context = lAt;
          const oAt = (o.decode_tokens_per_s_at_context ?? {}) as Record<string, number>;
          line.vs_llamacpp_at_context = Object.fromEntries(Object.keys(lAt).map((n) => [n, oAt[n] ? round(oAt[n] / lAt[n], 3) : null]));
        }
        if (!lc.ok && mode !== 'train') line.llamacpp_error = lc.error;
        if (ours.ok && tr.ok) {
          if (mode === 'train') {
            line.loss_first_ours = round(o.loss_first, 5);
            line.loss_first_torch = round(t.loss_first, 5);
            line.loss_abs_diff = round(Math.abs(Number(o.loss_first) - Number(t.loss_first)), 6);
          } else if (mode === 'prefill') {
            line.argmax_match = o.argmax === t.argmax;
          } else {
            line.greedy_ids_agree = agreement(o.ids, t.ids);
          }
        }
        if (!ours.ok) line.ours_error = ours.error;
        if (!tr.ok) line.torch_error = tr.error;
        if (t.torch_build_blas) line.torch_build_blas = t.torch_build_blas;
        if (t.omp_wait_policy) line.torch_omp_wait_policy = t.omp_wait_policy;
        if (profileDir) line.ours_profile_files = fs.readdirSync(profileDir).map((f) => path.join(profileDir as string, f));
        emit(line);
      }
    }
  }
  log(`done in ${((Date.now() - started) / 1000).toFixed(0)}s`);
}

/** How many leading greedy ids two runs share, as "n/NEW_TOKENS". */
function agreement(a: unknown, b: unknown): string {
  const x = (a as number[]) ?? [];
  const y = (b as number[]) ?? [];
  let n = 0;
  while (n < x.length && n < y.length && x[n] === y[n]) n++;
  return `${n}/${NEW_TOKENS}`;
}

function modelConfig(dir: string): { vocab_size: number; max_position_embeddings: number } {
  return JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
}
const vocabOf = (dir: string) => modelConfig(dir).vocab_size;
const maxPositionsOf = (dir: string) => modelConfig(dir).max_position_embeddings;

/** The token ids every implementation gets in each mode (the seeds childOurs uses). */
function benchIds(vocab: number, contexts: number[]) {
  return {
    prefillIds: randomIds(PREFILL_LEN, vocab, 7),
    promptIds: randomIds(PROMPT_LEN, vocab, 11),
    newTokens: NEW_TOKENS,
    contextIds: Object.fromEntries(contexts.map((n) => [n, randomIds(n, vocab, 13)])),
    contextNewTokens: CONTEXT_NEW_TOKENS,
  };
}

/** llama.cpp's side of one row: the GGUF written on first use, then timed like ours. */
async function llamaChildMain(arg: string): Promise<void> {
  const spec = JSON.parse(arg) as LlamaSpec & { dir: string; type: StoriesType };
  try {
    const gguf = await ensureGguf(spec.dir, spec.type, log);
    const r = await childLlamaCpp({ ...spec, gguf }, log);
    const med = median(r.times_s as number[]);
    emit({ ...r, median_s: med, tokens_per_s: (r.tokens as number) / med });
  } catch (e) {
    const err = e as Error;
    emit({ impl: 'llama.cpp', error: `${err.name}: ${err.message}` });
    log(err.stack ?? String(err));
    process.exitCode = 1;
  }
}

async function childMain(spec: string): Promise<void> {
  const parsed = JSON.parse(spec) as ChildSpec;
  const mode = parsed.mode;
  try {
    emit(await childOurs(parsed));
  } catch (e) {
    const err = e as Error;
    emit({ impl: 'ours', mode, error: `${err.name}: ${err.message}` });
    log(err.stack ?? String(err));
    process.exitCode = 1;
  }
}

if (require.main === module) {
  const i = process.argv.indexOf('--child');
  const j = process.argv.indexOf('--llama-child');
  const run = i >= 0 ? childMain(process.argv[i + 1]) : j >= 0 ? llamaChildMain(process.argv[j + 1]) : main();
  run.catch((e) => {
    emit({ event: 'bench_error', error: String((e as Error)?.stack ?? e) });
    process.exitCode = 1;
  });
}

#!/usr/bin/env node
// `aligner`: generate, train, score and inspect from the command line.
// Every error is one line on stderr naming what is wrong, with exit code 1.

import { randomBytes } from 'crypto';
import * as path from 'path';
import * as readline from 'readline';
import { parseArgs } from 'util';
import { readAdapter, writeAdapter } from '../adapter/file';
import { checkAdapterFits, quantizationNotice } from '../adapter/fit';
import { readTrainingFile } from '../data/source';
import { Engine, Recompute, RECOMPUTE_MODES } from '../engine/engine';
import type { AdapterWeights } from '../adapter/types';
import { DEVICES, isDevice } from '../engine/types';
import { parseQuantization } from '../engine/quantize';
import { storagePlan } from '../engine/weights';
import { isQuantType } from '../engine/ggml_blocks';
import { fitConversation } from '../generate/chat';
import { GENERATION_DEFAULTS } from '../generate/defaults';
import { generate, GenerateOptions } from '../generate/generate';
import { checkPrompt, PromptError } from '../generate/sequence';
import type { RecordSet } from '../data/records';
import { openModel } from '../model/open';
import { DEFAULT_MAX_BATCH, DEFAULT_MAX_QUEUE, startServer } from '../server/http';
import { ServedModels } from '../server/models';
import { discoverModels, type ModelEntry } from '../model/sources';
import type { ChatMessage } from '../model/types';
import { TRAIN_DEFAULTS } from '../train/defaults';
import { anchorSampling, refine as refineAdapter } from '../train/refine';
import { referenceAnswers } from '../generate/answers';
import { train, TrainOptions } from '../train/trainer';
import { formatDuration } from '../util/duration';
import { formatProgress } from './progress';

const USAGE = `usage:
  aligner generate --model DIR [--adapter FILE] (--prompt TEXT | --chat) [--max-new-tokens N] [--temperature T]
                   [--top-k K] [--top-p P] [--repetition-penalty R] [--seed S] [--stop TEXT]... [--device D]
  aligner train --model DIR --data FILE --out FILE.safetensors [--method sft|dpo] [--tokens N|auto] [--start-layer S]
                [--epochs E] [--steps N] [--lr X] [--batch B] [--max-len T] [--val-split F] [--val-data FILE] [--seed K]
                [--init FILE] [--warmup N] [--schedule cosine|constant] [--clip X] [--no-shuffle] [--weight-decay X]
                [--beta B] [--reference FILE] [--rpo-alpha A] [--micro-batch ROWS] [--recompute on|off|auto]
                [--device D] [--quant Q]
  aligner refine --model DIR --adapter FILE --data PAIRS.jsonl --out FILE.safetensors [--edit-weight E] [--anchor W]
                [training flags]
                DPO from {prompt, chosen, rejected} pairs (e.g. corrections of the adapter's answers) with the adapter
                as starting point and reference; prints the preference accuracy on held-out pairs before and after.
                Defaults: --lr ${TRAIN_DEFAULTS.refine.lr} --epochs ${TRAIN_DEFAULTS.refine.epochs} --rpo-alpha ${TRAIN_DEFAULTS.refine.rpoAlpha} --edit-weight ${TRAIN_DEFAULTS.refine.editWeight} (E × the NLL of the
                tokens the corrections changed) --anchor ${TRAIN_DEFAULTS.refine.anchorWeight} (W × the KL divergence from the adapter's next tokens
                at every other answer token and in answers it writes itself; 0 = off)
  aligner score --model DIR [--adapter FILE] --text TEXT
  aligner inspect FILE.safetensors
  aligner serve --model DIR [--adapter FILE]... [--adapters DIR]... [--port N] [--token T] [--max-batch N] [--max-queue N]
                OpenAI-compatible server on 127.0.0.1 (default port 8321); the token defaults to $ALIGNER_SERVER_TOKEN,
                else a random one that is printed
  aligner models [--json]
  aligner inspect-model --model MODEL [--quant Q]
--model takes a Hugging Face folder, a .gguf file, ollama:NAME[:TAG] (the Ollama store), org/name (the Hugging
Face cache; \`aligner models\` lists what is found) or a llama2.c checkpoint (.bin; --tokenizer FILE names its
tokenizer .bin).
--device: auto, cpu (default), webgpu or cuda.
Unless the model's generation_config sets them: --max-new-tokens ${GENERATION_DEFAULTS.maxNewTokens} --temperature ${GENERATION_DEFAULTS.temperature} --top-p ${GENERATION_DEFAULTS.topP}.
Training: --tokens ${TRAIN_DEFAULTS.tokens} --start-layer ${TRAIN_DEFAULTS.startLayer} --epochs ${TRAIN_DEFAULTS.epochs} --lr ${TRAIN_DEFAULTS.lr.sft} (DPO ${TRAIN_DEFAULTS.lr.dpo}) --batch ${TRAIN_DEFAULTS.batchSize} --max-len ${TRAIN_DEFAULTS.maxLen}.
--micro-batch: rows per training pass (gradients are summed over passes; default: from model size and free memory).
--recompute: recompute each layer in the backward pass instead of keeping its activations (less memory, one more
  forward pass; targets go through the LM head in chunks either way); auto (default) does so when the model is too
  large for two rows per pass.
--quant: how the base's linear layers are stored: auto (default: a GGUF's own blocks when it has quantized layers, else q4
from 300M parameters, else f32), f32, q8, q4 or stored (a GGUF's Q8_0/Q4_0/Q4_1/Q4_K/Q5_K/Q6_K blocks as they are).`;

const COMMON = {
  model: { type: 'string' },
  tokenizer: { type: 'string' },
  adapter: { type: 'string' },
  device: { type: 'string' },
  threads: { type: 'string' },
  quant: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

// Past a file-size limit (ulimit -f) the kernel sends SIGXFSZ, which would kill the process
// mid-write; with a handler the write fails with EFBIG instead and is reported (util/atomic.ts).
process.on('SIGXFSZ', () => undefined);

class UsageError extends Error {}

function num(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new UsageError(`--${flag}: expected a number, got "${value}"`);
  return n;
}

function required(value: string | undefined, flag: string): string {
  if (!value) throw new UsageError(`--${flag} is required`);
  return value;
}

async function openEngine(v: {
  model?: string;
  tokenizer?: string;
  device?: string;
  threads?: string;
  quant?: string;
  'micro-batch'?: string;
  recompute?: string;
}): Promise<Engine> {
  const model = await openModel(required(v.model, 'model'), v.tokenizer);
  const device = v.device ?? 'cpu';
  if (!isDevice(device)) throw new UsageError(`--device: expected ${DEVICES.join(', ')}, got "${device}"`);
  let quantization;
  try {
    quantization = parseQuantization(v.quant, model, '--quant');
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const microBatch = num(v['micro-batch'], 'micro-batch');
  if (microBatch !== undefined && !(Number.isInteger(microBatch) && microBatch >= 1))
    throw new UsageError(`--micro-batch: expected a whole number ≥ 1, got "${v['micro-batch']}"`);
  const recompute = v.recompute;
  if (recompute !== undefined && !RECOMPUTE_MODES.includes(recompute as Recompute))
    throw new UsageError(`--recompute: expected ${RECOMPUTE_MODES.join(', ')}, got "${recompute}"`);
  return Engine.create(model, {
    device,
    quantization,
    microBatch,
    recompute: recompute as Recompute | undefined,
    threads: num(v.threads, 'threads'),
    log,
  });
}

function log(message: string): void {
  process.stderr.write(`aligner: ${message}\n`);
}

function loadAdapterFor(file: string | undefined, engine: Engine): AdapterWeights | null {
  if (!file) return null;
  const adapter = readAdapter(file);
  checkAdapterFits(adapter, engine.model, file);
  const notice = quantizationNotice(adapter, engine.quantization, file);
  if (notice) log(notice);
  return adapter;
}

async function generateCommand(args: string[]): Promise<void> {
  const { values: v } = parseArgs({
    args,
    options: {
      ...COMMON,
      prompt: { type: 'string' },
      chat: { type: 'boolean' },
      'max-new-tokens': { type: 'string' },
      temperature: { type: 'string' },
      'top-k': { type: 'string' },
      'top-p': { type: 'string' },
      'repetition-penalty': { type: 'string' },
      seed: { type: 'string' },
      stop: { type: 'string', multiple: true },
    },
  });
  if ((v.prompt === undefined) === !v.chat) throw new UsageError('give either --prompt TEXT or --chat');
  const engine = await openEngine(v);
  const adapter = loadAdapterFor(v.adapter, engine);
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  const opts: GenerateOptions = {
    maxNewTokens: num(v['max-new-tokens'], 'max-new-tokens'),
    temperature: num(v.temperature, 'temperature'),
    topK: num(v['top-k'], 'top-k'),
    topP: num(v['top-p'], 'top-p'),
    repetitionPenalty: num(v['repetition-penalty'], 'repetition-penalty'),
    seed: num(v.seed, 'seed'),
    stop: v.stop,
    stopAtBos: true,
    onText: (d) => process.stdout.write(d),
    signal: controller.signal,
    adapterName: v.adapter && path.basename(v.adapter),
  };
  if (v.prompt !== undefined) {
    const ids = engine.model.tokenizer.encode(v.prompt);
    checkPrompt(engine.model, ids); // before echoing: a prompt that cannot run is not printed back
    process.stdout.write(v.prompt);
    await generate(engine, ids, adapter, opts);
    process.stdout.write('\n');
  } else {
    await chatLoop(engine, adapter, opts);
  }
  await engine.dispose();
}

/** Interactive chat on stdin: one user message per line, history kept. */
async function chatLoop(engine: Engine, adapter: AdapterWeights | null, opts: GenerateOptions): Promise<void> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr, prompt: '> ' });
  const history: ChatMessage[] = [];
  rl.prompt();
  for await (const line of rl) {
    if (line.trim()) {
      let ids: number[];
      try {
        ids = fitConversation(
          engine.model,
          [...history, { role: 'user', content: line }],
          opts.maxNewTokens ?? engine.model.generation.maxNewTokens ?? 256,
        ).ids;
      } catch (err) {
        if (!(err instanceof PromptError)) throw err;
        process.stderr.write(`aligner: ${err.message}\n`);
        rl.prompt();
        continue;
      }
      history.push({ role: 'user', content: line });
      const out = await generate(engine, ids, adapter, opts);
      history.push({ role: 'assistant', content: out.text });
      process.stdout.write('\n');
    }
    rl.prompt();
  }
}

/**
 * `aligner train`, or `aligner refine` (refine = true): DPO whose starting point and reference are
 * --adapter, the adapter the pairs correct (SPEC §2: π_ref "a given earlier adapter").
 */
async function trainCommand(args: string[], refine = false): Promise<void> {
  const { values: v } = parseArgs({
    args,
    options: {
      ...COMMON,
      data: { type: 'string' },
      'val-data': { type: 'string' },
      out: { type: 'string' },
      method: { type: 'string' },
      tokens: { type: 'string' },
      'start-layer': { type: 'string' },
      epochs: { type: 'string' },
      steps: { type: 'string' },
      lr: { type: 'string' },
      batch: { type: 'string' },
      'max-len': { type: 'string' },
      'val-split': { type: 'string' },
      seed: { type: 'string' },
      init: { type: 'string' },
      warmup: { type: 'string' },
      schedule: { type: 'string' },
      clip: { type: 'string' },
      'no-shuffle': { type: 'boolean' },
      'weight-decay': { type: 'string' },
      beta: { type: 'string' },
      reference: { type: 'string' },
      'rpo-alpha': { type: 'string' },
      anchor: { type: 'string' },
      'edit-weight': { type: 'string' },
      'micro-batch': { type: 'string' },
      recompute: { type: 'string' },
    },
  });
  if (refine) {
    for (const flag of ['method', 'init', 'reference'] as const)
      if (v[flag] !== undefined) throw new UsageError(`aligner refine: --${flag} is not taken (refine is DPO from --adapter)`);
    v.method = 'dpo';
    v.init = required(v.adapter, 'adapter');
  }
  const out = required(v.out, 'out');
  if (!out.endsWith('.safetensors')) throw new UsageError(`--out: the adapter file must end in .safetensors, got "${out}"`);
  const method = v.method ?? undefined;
  if (method !== undefined && method !== 'sft' && method !== 'dpo') throw new UsageError(`--method: expected sft or dpo, got "${method}"`);
  const schedule = v.schedule;
  if (schedule !== undefined && schedule !== 'cosine' && schedule !== 'constant')
    throw new UsageError(`--schedule: expected cosine or constant, got "${schedule}"`);
  const data = readTrainingFile(required(v.data, 'data'));
  const validation = v['val-data'] ? readTrainingFile(v['val-data']) : undefined;
  const engine = await openEngine(v);
  const init = loadAdapterFor(v.init, engine) ?? undefined;
  const reference = refine ? undefined : loadAdapterFor(v.reference, engine);
  const opts: TrainOptions = {
    method,
    tokens: v.tokens === 'auto' ? 'auto' : num(v.tokens, 'tokens'),
    startLayer: init?.startLayer ?? num(v['start-layer'], 'start-layer'),
    epochs: num(v.epochs, 'epochs'),
    steps: num(v.steps, 'steps'),
    lr: num(v.lr, 'lr'),
    batchSize: num(v.batch, 'batch'),
    maxLen: num(v['max-len'], 'max-len'),
    valSplit: num(v['val-split'], 'val-split'),
    validation,
    seed: num(v.seed, 'seed'),
    init,
    warmup: num(v.warmup, 'warmup'),
    schedule,
    clip: num(v.clip, 'clip'),
    shuffle: !v['no-shuffle'],
    weightDecay: num(v['weight-decay'], 'weight-decay'),
    beta: num(v.beta, 'beta'),
    reference,
    rpoAlpha: num(v['rpo-alpha'], 'rpo-alpha'),
    anchorWeight: num(v.anchor, 'anchor'),
    editWeight: num(v['edit-weight'], 'edit-weight'),
  };
  if (refine) await sampleAnchor(engine, data, init!, opts);
  else {
    const refineOnly = (['anchor', 'edit-weight'] as const).find((flag) => v[flag] !== undefined);
    if (refineOnly) throw new UsageError(`--${refineOnly} is a flag of aligner refine`);
  }
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  const tty = process.stderr.isTTY;
  const hooks = {
    signal: controller.signal,
    onProgress: (p: Parameters<typeof formatProgress>[0]) =>
      process.stderr.write(
        tty ? `\r${formatProgress(p)}\x1b[K` : p.valLoss !== undefined || p.step === p.totalSteps ? `${formatProgress(p)}\n` : '',
      ),
  };
  const { adapter, summary } = refine ? await refineAdapter(engine, data, init!, opts, hooks) : await train(engine, data, opts, hooks);
  if (tty) process.stderr.write('\n');
  writeAdapter(
    out,
    adapter,
    {
      base_model: engine.model.name,
      base_fingerprint: engine.model.fingerprint,
      quantization: engine.quantization,
      method: summary.method,
      examples: summary.examples,
      epochs: summary.epochs,
      train_loss: summary.trainLoss,
      val_loss: summary.valLoss,
      date: new Date().toISOString(),
      extra: { name: path.basename(out, '.safetensors'), data: path.basename(data.file), steps: String(summary.steps) },
    },
    engine.model.config,
  );
  const fmt = (x: number | null) => (x === null ? 'n/a' : x.toFixed(4));
  process.stderr.write(
    `trained ${summary.method} adapter (${adapter.tokens} prefix tokens, start layer ${adapter.startLayer}) on ${summary.trainExamples} examples: ` +
      `${summary.steps} steps in ${formatDuration(summary.seconds)}, train loss ${fmt(summary.trainLoss)}, ` +
      `validation loss ${fmt(summary.initialValLoss)} -> ${fmt(summary.valLoss)} (${summary.valExamples} examples)\n` +
      (summary.preferenceAccuracy
        ? `preference accuracy on ${summary.valExamples} held-out pairs (chosen more likely than rejected): ` +
          `${percent(summary.preferenceAccuracy.before)} -> ${percent(summary.preferenceAccuracy.after)}\n`
        : '') +
      (summary.stoppedEarly ? `stopped early: ${summary.stoppedEarly}\n` : '') +
      `wrote ${out}\n`,
  );
  await engine.dispose();
}

/** The anchor of `aligner refine` (TrainOptions.anchor), with how long its sampling took. */
async function sampleAnchor(engine: Engine, data: RecordSet, adapter: AdapterWeights, opts: TrainOptions): Promise<void> {
  const anchor = anchorSampling(adapter, data, opts);
  if (!anchor) return;
  const started = Date.now();
  opts.anchor = await referenceAnswers(engine, anchor.pairs, adapter, anchor);
  process.stderr.write(
    `anchor: ${opts.anchor.length} answers of the adapter to the pairs' prompts in ${formatDuration((Date.now() - started) / 1000)}\n`,
  );
}

function percent(x: number): string {
  return `${(100 * x).toFixed(0)}%`;
}

async function scoreCommand(args: string[]): Promise<void> {
  const { values: v } = parseArgs({ args, options: { ...COMMON, text: { type: 'string' } } });
  const text = required(v.text, 'text');
  const engine = await openEngine(v);
  const adapter = loadAdapterFor(v.adapter, engine);
  const ids = engine.model.tokenizer.encode(text);
  if (ids.length < 2) throw new UsageError('--text: needs at least one token after BOS to score');
  const T = ids.length;
  const batch = {
    rows: 1,
    length: T,
    inputIds: Int32Array.from(ids),
    targets: Int32Array.from(ids.slice(1).concat(0)),
    mask: Uint8Array.from(ids.map((_, t) => (t < T - 1 ? 1 : 0))),
  };
  const logprobs = await engine.tokenLogps(batch, adapter);
  const total = logprobs.reduce((a, b) => a + b, 0);
  const result = {
    ids,
    tokens: ids.map((id) => engine.model.tokenizer.decode([id], { skipSpecialTokens: false })),
    // The first token is given, not predicted.
    logprobs: [null, ...Array.from(logprobs)],
    total_logprob: total,
    perplexity: Math.exp(-total / logprobs.length),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  await engine.dispose();
}

function inspectCommand(args: string[]): void {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
  if (positionals.length !== 1) throw new UsageError('aligner inspect takes one adapter file');
  const a = readAdapter(positionals[0]);
  const summary = {
    file: positionals[0],
    ...a.metadata,
    prefix_shape: [a.tokens, a.prefix.length / a.tokens],
    gates: a.gates.length,
    parameters: a.prefix.length + a.gates.length,
    gate_abs_mean: a.gates.reduce((s, g) => s + Math.abs(g), 0) / a.gates.length,
  };
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
}

/** The port `aligner serve` and the extension's server use unless told otherwise. */
const DEFAULT_PORT = 8321;

async function serveCommand(args: string[]): Promise<void> {
  const { values: v } = parseArgs({
    args,
    options: {
      ...COMMON,
      adapter: { type: 'string', multiple: true },
      adapters: { type: 'string', multiple: true },
      port: { type: 'string' },
      token: { type: 'string' },
      'max-batch': { type: 'string' },
      'max-queue': { type: 'string' },
    },
  });
  const port = num(v.port, 'port') ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port: expected 0..65535, got "${v.port}"`);
  const positive = (key: 'max-batch' | 'max-queue', fallback: number) => {
    const n = num(v[key], key) ?? fallback;
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${key}: expected a positive integer, got "${v[key]}"`);
    return n;
  };
  const given = v.token ?? process.env.ALIGNER_SERVER_TOKEN;
  if (given === '') throw new UsageError('--token: the token must not be empty');
  const token = given ?? randomBytes(24).toString('base64url');
  const engine = await openEngine(v);
  const warn = (m: string) => process.stderr.write(`aligner: ${m}\n`);
  const models = new ServedModels(engine.model, v.adapter ?? [], v.adapters ?? [], warn);
  const server = await startServer(engine, models, {
    port,
    token,
    maxBatch: positive('max-batch', DEFAULT_MAX_BATCH),
    maxQueue: positive('max-queue', DEFAULT_MAX_QUEUE),
    log: warn,
  });
  process.stdout.write(
    `serving ${models
      .list()
      .map((m) => m.id)
      .join(', ')} at ${server.url}\n`,
  );
  if (given === undefined) process.stdout.write(`token: ${token}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  await engine.dispose();
}

/** Every model found in the Ollama store, LM Studio's folders and the Hugging Face cache. */
async function modelsCommand(args: string[]): Promise<void> {
  const { values: v } = parseArgs({ args, options: { json: { type: 'boolean' } } });
  const models = await discoverModels();
  if (v.json) return void process.stdout.write(`${JSON.stringify(models, null, 2)}\n`);
  if (models.length === 0)
    return void process.stdout.write('no models found in the Ollama store, LM Studio folders or the Hugging Face cache\n');
  const row = (m: ModelEntry) => [
    m.id,
    m.source,
    m.architecture,
    m.parameters == null ? '?' : formatCount(m.parameters),
    m.quantization,
    formatBytes(m.sizeBytes),
  ];
  const rows = [['MODEL', 'SOURCE', 'ARCH', 'PARAMS', 'TYPE', 'SIZE'], ...models.map(row)];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  rows.forEach((r, i) => {
    const line = r
      .map((c, j) => c.padEnd(widths[j]))
      .join('  ')
      .trimEnd();
    const reason = i > 0 ? models[i - 1].unsupported : null;
    process.stdout.write(`${line}${reason ? `  (unsupported: ${reason})` : ''}\n`);
  });
}

/** What a base model is once loaded: its config, and per stored type how the engine serves its weights. */
async function inspectModelCommand(args: string[]): Promise<void> {
  const { values: v } = parseArgs({
    args,
    options: { model: { type: 'string' }, tokenizer: { type: 'string' }, quant: { type: 'string' } },
  });
  const model = await openModel(required(v.model, 'model'), v.tokenizer);
  let quantization;
  try {
    quantization = parseQuantization(v.quant, model, '--quant');
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const types: Record<string, number> = {};
  for (const t of model.weights.tensors.values()) types[t.dtype] = (types[t.dtype] ?? 0) + 1;
  // Per stored type: how many weights keep float32, how many are used as their own blocks, how many are
  // quantized from float32 (requantized when they were blocks of another kind).
  const served: Record<string, Record<string, number>> = {};
  for (const p of storagePlan(model, quantization)) {
    const from = p.mapped ? 'mapped' : isQuantType(p.dtype) ? 'requantized' : 'quantized';
    const how = p.bits === undefined ? 'f32' : `${from} ${p.bits}-bit`;
    served[p.dtype] ??= {};
    served[p.dtype][how] = (served[p.dtype][how] ?? 0) + 1;
  }
  const summary = {
    name: model.name,
    source: model.source,
    fingerprint: model.fingerprint,
    config: model.config,
    stored_types: types,
    quantization,
    served,
    vocab_size: model.tokenizer.vocabSize,
    chat_template: model.tokenizer.applyChatTemplate([{ role: 'user', content: '{prompt}' }], { addGenerationPrompt: true }),
    generation: model.generation,
  };
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
}

function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)}K`;
  return String(n);
}

function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  return `${(n / 1e3).toFixed(0)} KB`;
}

const COMMANDS: Record<string, (args: string[]) => Promise<void> | void> = {
  generate: generateCommand,
  train: (args) => trainCommand(args),
  refine: (args) => trainCommand(args, true),
  score: scoreCommand,
  inspect: inspectCommand,
  serve: serveCommand,
  models: modelsCommand,
  'inspect-model': inspectModelCommand,
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const command = name ? COMMANDS[name] : undefined;
  if (!command || rest.includes('--help') || rest.includes('-h')) {
    (command || name === undefined || name === '--help' ? process.stdout : process.stderr).write(`${USAGE}\n`);
    return command || name === '--help' ? 0 : 2;
  }
  await command(rest);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`aligner: ${err.message.split('\n')[0]}\n`);
    process.exit(err instanceof UsageError || err.name === 'TypeError' ? 2 : 1);
  },
);

// The worker's compute thread: owns the model and the engine (onnxruntime sessions)
// and runs one job (load, generate, train) at a time for the JSON-RPC thread. A job is
// cancelled through a shared flag that is read between training steps and decoded
// tokens, so cancelling never needs this (possibly blocked) thread's event loop.

import * as fs from 'fs';
import * as path from 'path';
import { parentPort, workerData } from 'worker_threads';
import type { BaseModel } from '../model/types';
import type { ModelInfo, RefineResult, TrainResult } from '../protocol';
import { ErrorCodes } from '../protocol';
import { CANCEL_SLOT, type ComputeJob, type ComputeMessage, type GenerateOutcome } from './messages';
import { adapterHistory, adapterInfo } from './adapters';
import { AdapterCache, AdapterNotFoundError } from './adapterCache';

import { openModel } from '../model/open';
import { parseQuantization } from '../engine/quantize';
import { Engine } from '../engine/engine';
import { generate } from '../generate/generate';
import { checkPrompt, PromptError } from '../generate/sequence';
import { train, type TrainOptions } from '../train/trainer';
import { anchorSampling, refine } from '../train/refine';
import { referenceAnswers } from '../generate/answers';
import { keepVersion } from '../adapter/history';
import { readJsonl } from '../data/jsonl';
import { fitConversation } from '../generate/chat';
import { GENERATION_DEFAULTS } from '../generate/defaults';
import { readAdapterHeader, writeAdapter } from '../adapter/file';
import { sweepTemporaries } from '../util/atomic';
import { AdapterError, AdapterMismatchError } from '../adapter/errors';
import { DataError, EmptyDataError } from '../data/errors';
import { ModelLoadError } from '../model/errors';
import { describeSource, readTrainSource } from '../data/source';
import type { AdapterWeights } from '../adapter/types';
import { samplePrompt, sampleText } from './sample';

const port = parentPort!;
const cancelFlags = new Int32Array(workerData.cancel as SharedArrayBuffer);

let model: BaseModel | null = null;
let engine: Engine | null = null;
let modelInfo: ModelInfo | null = null;
const adapters = new AdapterCache();

function post(msg: ComputeMessage): void {
  port.postMessage(msg);
}

export class JobError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

function cancelled(): boolean {
  return Atomics.load(cancelFlags, CANCEL_SLOT) === 1;
}

/** An AbortController tied to the shared cancel flag. `poll()` is cheap; call it often. */
function cancellation(): { signal: AbortSignal; poll: () => boolean; dispose: () => void } {
  const controller = new AbortController();
  const poll = (): boolean => {
    if (!controller.signal.aborted && cancelled()) {
      const err = new Error('cancelled');
      err.name = 'AbortError';
      controller.abort(err);
    }
    return controller.signal.aborted;
  };
  // Catches a cancel while the engine awaits real asynchronous work.
  const timer = setInterval(poll, 5);
  return { signal: controller.signal, poll, dispose: () => clearInterval(timer) };
}

function isAbort(err: unknown, signal?: AbortSignal): boolean {
  if (signal?.aborted) return true;
  const e = err as { name?: string; code?: string } | null;
  return !!e && (e.name === 'AbortError' || e.code === 'ABORT_ERR');
}

function classify(err: unknown): { code: number; message: string } {
  if (err instanceof JobError) return { code: err.code, message: err.message };
  const message = (err as Error)?.message ?? String(err);
  if (err instanceof AdapterMismatchError) return { code: ErrorCodes.AdapterMismatch, message };
  if (err instanceof ModelLoadError) return { code: ErrorCodes.ModelLoad, message };
  const invalid = [DataError, EmptyDataError, PromptError, AdapterError, AdapterNotFoundError].some((type) => err instanceof type);
  if (invalid || /ENOENT/.test(message)) return { code: ErrorCodes.InvalidInput, message };
  return { code: ErrorCodes.Internal, message };
}

function requireModel(): { model: BaseModel; engine: Engine } {
  if (!model || !engine) throw new JobError(ErrorCodes.NoModel, 'No base model is loaded: send aligner/loadModel first.');
  return { model, engine };
}

async function load(job: Extract<ComputeJob, { op: 'load' }>): Promise<ModelInfo> {
  const started = Date.now();
  post({ type: 'loadProgress', id: job.id, message: `Reading ${path.basename(job.path)}`, percentage: 10 });
  const next = await openModel(job.path);
  if (cancelled()) throw new JobError(ErrorCodes.Cancelled, 'Loading cancelled');
  post({ type: 'loadProgress', id: job.id, message: `Starting the engine (${job.device})`, percentage: 50 });
  const quantization = parseQuantization(job.quantization, next, 'aligner.quantization');
  const nextEngine = await Engine.create(next, { device: job.device, quantization });
  if (cancelled()) {
    await nextEngine.dispose().catch(() => undefined);
    throw new JobError(ErrorCodes.Cancelled, 'Loading cancelled');
  }
  if (engine) {
    try {
      await engine.dispose();
    } catch {
      /* the old engine is gone either way */
    }
  }
  model = next;
  engine = nextEngine;
  adapters.clear();
  const c = next.config;
  let hasChatTemplate: boolean;
  try {
    hasChatTemplate = next.tokenizer.applyChatTemplate([{ role: 'user', content: 'x' }], { addGenerationPrompt: true }) !== null;
  } catch {
    hasChatTemplate = false;
  }
  modelInfo = {
    name: next.name,
    path: job.path,
    fingerprint: next.fingerprint,
    legacyFingerprint: next.legacyFingerprint,
    architecture: c.architecture,
    device: String(nextEngine.device),
    quantization: nextEngine.quantization,
    hiddenSize: c.hiddenSize,
    numLayers: c.numLayers,
    numHeads: c.numHeads,
    vocabSize: c.vocabSize,
    hasChatTemplate,
    loadMs: Date.now() - started,
  };
  post({ type: 'loadProgress', id: job.id, message: 'Ready', percentage: 100 });
  return modelInfo;
}

async function runGenerate(job: Extract<ComputeJob, { op: 'generate' }>): Promise<GenerateOutcome> {
  const { model, engine } = requireModel();
  const adapter = adapters.get(job.adapter, model);
  const p = job.params;
  const maxNewTokens = p.maxNewTokens ?? model.generation.maxNewTokens ?? GENERATION_DEFAULTS.maxNewTokens;
  const prompt = job.messages
    ? fitConversation(model, job.messages, maxNewTokens)
    : { text: job.prompt ?? '', ids: model.tokenizer.encode(job.prompt ?? '') };
  const promptIds = prompt.ids;
  checkPrompt(model, promptIds);
  const cancel = cancellation();
  try {
    const out = await generate(engine, promptIds, adapter, {
      // Unset fields fall to the model's generation_config, then GENERATION_DEFAULTS (in generate()).
      maxNewTokens,
      temperature: p.temperature,
      topK: p.topK,
      topP: p.topP,
      repetitionPenalty: p.repetitionPenalty,
      seed: p.seed ?? Math.floor(Math.random() * 2 ** 31),
      stop: p.stop ?? [],
      stopAtBos: true,
      onText: (delta: string) => {
        if (delta) post({ type: 'delta', id: job.id, delta });
        cancel.poll();
      },
      signal: cancel.signal,
      adapterName: job.adapter ? path.basename(job.adapter) : undefined,
    });
    return {
      text: out.text,
      prompt: prompt.text,
      finishReason: out.finishReason,
      promptTokens: promptIds.length,
      completionTokens: out.ids.length,
    };
  } catch (err) {
    if (isAbort(err, cancel.signal)) throw new JobError(ErrorCodes.Cancelled, 'Generation cancelled');
    throw err;
  } finally {
    cancel.dispose();
  }
}

async function runTrain(job: Extract<ComputeJob, { op: 'train' }>): Promise<TrainResult> {
  const { model, engine } = requireModel();
  const started = Date.now();
  const file = path.join(job.outDir, `${job.name}.safetensors`);
  if (!job.overwrite && fs.existsSync(file)) {
    throw new JobError(ErrorCodes.InvalidInput, `An adapter named "${job.name}" already exists in ${job.outDir}`);
  }
  const set = readTrainSource(job.source);
  const method = job.options.method ?? (set.form === 'preference' ? 'dpo' : 'sft');
  const cancel = cancellation();
  const prompt = samplePrompt(engine, set);
  const postSample = async (adapter: AdapterWeights | null, step: number) => {
    if (!prompt) return;
    const text = await sampleText(engine, prompt, adapter, cancel.signal);
    post({ type: 'sample', id: job.id, sample: { jobId: job.id, step, prompt: prompt.text, text } });
  };
  try {
    await postSample(null, 0);
    const result = await train(
      engine,
      set,
      { ...job.options, method, steps: job.options.steps || undefined },
      {
        onProgress: (p) => {
          post({ type: 'progress', id: job.id, progress: { jobId: job.id, ...p } });
          cancel.poll();
        },
        onCheckpoint: (adapter, step) => postSample(adapter, step),
        signal: cancel.signal,
      },
    );
    if (cancel.poll()) throw new JobError(ErrorCodes.Cancelled, 'Training cancelled');
    fs.mkdirSync(job.outDir, { recursive: true });
    sweepTemporaries(job.outDir);
    writeAdapter(
      file,
      result.adapter,
      {
        base_model: model.name,
        base_fingerprint: model.fingerprint,
        quantization: engine.quantization,
        method,
        examples: result.summary.examples,
        epochs: result.summary.epochs,
        train_loss: result.summary.trainLoss,
        val_loss: result.summary.valLoss ?? null,
        date: new Date().toISOString(),
        extra: { name: job.name, source: describeSource(job.source) },
      },
      model.config,
    );
    adapters.forget(file);
    return {
      adapter: adapterInfo(file, model),
      summary: result.summary,
      ms: Date.now() - started,
    };
  } catch (err) {
    if (isAbort(err, cancel.signal)) throw new JobError(ErrorCodes.Cancelled, 'Training cancelled');
    throw err;
  } finally {
    cancel.dispose();
  }
}

/**
 * DPO on the pairs from the adapter (src/train/refine.ts, as `aligner refine`); on success the
 * adapter's current content becomes a version in its history and the refined adapter takes its
 * place (both writes atomic). A cancelled or failed run changes nothing.
 */
async function runRefine(job: Extract<ComputeJob, { op: 'refine' }>): Promise<RefineResult> {
  const { model, engine } = requireModel();
  const started = Date.now();
  const pairs = readJsonl(job.pairs);
  const start = adapters.get(job.adapter, model)!;
  const before = readAdapterHeader(job.adapter).metadata;
  const cancel = cancellation();
  try {
    const options: TrainOptions = { ...job.options };
    const anchor = anchorSampling(start, pairs, options);
    if (anchor) options.anchor = await referenceAnswers(engine, anchor.pairs, start, { ...anchor, signal: cancel.signal });
    const result = await refine(engine, pairs, start, options, {
      onProgress: (p) => {
        post({ type: 'progress', id: job.id, progress: { jobId: job.id, ...p } });
        cancel.poll();
      },
      signal: cancel.signal,
    });
    if (cancel.poll()) throw new JobError(ErrorCodes.Cancelled, 'Refinement cancelled');
    const s = result.summary;
    const previous = keepVersion(job.adapter);
    const accuracy = s.preferenceAccuracy;
    writeAdapter(
      job.adapter,
      result.adapter,
      {
        base_model: model.name,
        base_fingerprint: model.fingerprint,
        quantization: engine.quantization,
        method: 'dpo',
        examples: s.examples,
        epochs: s.epochs,
        train_loss: s.trainLoss,
        val_loss: s.valLoss ?? null,
        date: new Date().toISOString(),
        extra: {
          ...before.extra,
          refined_from: path.basename(previous),
          pairs: path.basename(job.pairs),
          ...(accuracy ? { preference_accuracy: `${accuracy.before.toFixed(3)} -> ${accuracy.after.toFixed(3)}` } : {}),
        },
      },
      model.config,
    );
    adapters.forget(job.adapter);
    return {
      adapter: adapterInfo(job.adapter, model),
      summary: s,
      ms: Date.now() - started,
      previous: adapterHistory(job.adapter, modelInfo).find((v) => v.path === previous)!,
    };
  } catch (err) {
    if (isAbort(err, cancel.signal)) throw new JobError(ErrorCodes.Cancelled, 'Refinement cancelled');
    throw err;
  } finally {
    cancel.dispose();
  }
}

async function run(job: ComputeJob): Promise<unknown> {
  switch (job.op) {
    case 'load':
      return load(job);
    case 'generate':
      return runGenerate(job);
    case 'train':
      return runTrain(job);
    case 'refine':
      return runRefine(job);
  }
}

port.on('message', (job: ComputeJob) => {
  run(job).then(
    (result) => post({ type: 'result', id: job.id, result: result as never }),
    (err) => {
      const { code, message } = classify(err);
      if (code === ErrorCodes.Internal) post({ type: 'log', level: 'error', message: (err as Error)?.stack ?? message });
      post({ type: 'error', id: job.id, code, message });
    },
  );
});

post({ type: 'ready' });

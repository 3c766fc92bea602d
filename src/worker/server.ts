// The Aligner worker: a language-server-style Node process that serves the typed
// requests of src/protocol.ts. Started by the extension through vscode-languageclient
// (--node-ipc) or standalone (`node server.js --stdio`) by the CLI and the tests.
//
// This thread only speaks JSON-RPC and keeps the job queue; every engine call runs in
// the compute thread (compute.ts), so status and cancel are answered at once even
// while onnxruntime blocks that thread for a whole training step.

import * as fs from 'fs';
import * as path from 'path';
import { Worker } from 'worker_threads';
import {
  createConnection,
  ProposedFeatures,
  ResponseError,
  WorkDoneProgress,
  type CancellationToken,
  type Connection,
} from 'vscode-languageserver/node';
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
  LogNotification,
  PROTOCOL_VERSION,
  StatusRequest,
  TrainProgressNotification,
  TrainRequest,
  type ChatMessage,
  type ChatResult,
  type GenerationParams,
  type JobInfo,
  type ModelInfo,
  type StatusResult,
  type TrainResult,
  type WorkerState,
} from '../protocol';
import { adapterInfo, isValidAdapterName, listAdapters } from './adapters';
import { CANCEL_SLOT, type ComputeJob, type ComputeMessage, type GenerateOutcome } from './messages';

interface Pending {
  job: ComputeJob;
  info: JobInfo;
  resolve: (v: unknown) => void;
  reject: (e: ResponseError<void>) => void;
  workDoneToken?: string | number;
}

const startedAt = Date.now();
const connection: Connection = createConnection(ProposedFeatures.all);
const cancelBuffer = new SharedArrayBuffer(4);
const cancelFlags = new Int32Array(cancelBuffer);

let compute: Worker | null = null;
let computeReady: Promise<void> | null = null;
let model: ModelInfo | null = null;
let loadingPath: string | null = null;
let current: Pending | null = null;
const queue: Pending[] = [];
let seq = 0;

function log(level: 'info' | 'warn' | 'error', message: string): void {
  process.stderr.write(`[aligner-worker ${level}] ${message}\n`);
  void connection.sendNotification(LogNotification, { level, message }).catch(() => undefined);
}

if (process.env.ALIGNER_WORKER_PID_FILE) {
  try {
    fs.writeFileSync(process.env.ALIGNER_WORKER_PID_FILE, String(process.pid));
  } catch {
    /* best effort: only tests use it */
  }
}

// ------------------------------------------------------------ compute thread

function startCompute(): Promise<void> {
  const file = path.join(__dirname, 'compute.js');
  const w = new Worker(file, { workerData: { cancel: cancelBuffer }, stdout: true, stderr: true });
  compute = w;
  // The compute thread's console must never reach our stdout (the JSON-RPC stream in --stdio mode).
  w.stdout.on('data', (d: Buffer) => process.stderr.write(d));
  w.stderr.on('data', (d: Buffer) => process.stderr.write(d));
  computeReady = new Promise<void>((resolve, reject) => {
    const onMsg = (m: ComputeMessage): void => {
      if (m.type === 'ready') {
        w.off('message', onMsg);
        resolve();
      }
    };
    w.on('message', onMsg);
    w.once('error', reject);
  });
  w.on('message', onComputeMessage);
  w.on('error', (err) => log('error', `compute thread failed: ${err.stack ?? err.message}`));
  w.on('exit', (code) => {
    if (compute !== w) return;
    compute = null;
    computeReady = null;
    model = null;
    log('error', `compute thread exited (code ${code}); the model must be loaded again`);
    if (current) {
      current.reject(new ResponseError(ErrorCodes.Internal, `The compute thread stopped (exit code ${code}).`));
      current = null;
    }
    pump();
  });
  return computeReady;
}

function onComputeMessage(m: ComputeMessage): void {
  switch (m.type) {
    case 'ready':
      return;
    case 'log':
      log(m.level, m.message);
      return;
    case 'loadProgress':
      if (current && current.job.id === m.id && current.workDoneToken !== undefined) {
        void connection.sendProgress(WorkDoneProgress.type, current.workDoneToken, {
          kind: 'report',
          message: m.message,
          percentage: m.percentage,
        });
      }
      return;
    case 'delta':
      void connection.sendNotification(ChatDeltaNotification, { requestId: m.id, delta: m.delta });
      return;
    case 'progress':
      if (current && current.job.id === m.id) current.info.progress = m.progress;
      void connection.sendNotification(TrainProgressNotification, m.progress);
      return;
    case 'result':
    case 'error': {
      if (!current || current.job.id !== m.id) return;
      const done = current;
      current = null;
      if (m.type === 'result') {
        if (done.job.op === 'load') {
          model = m.result as ModelInfo;
          loadingPath = null;
        }
        done.resolve(m.result);
      } else {
        if (done.job.op === 'load') loadingPath = null;
        done.reject(new ResponseError(m.code, m.message));
      }
      pump();
      return;
    }
  }
}

function pump(): void {
  if (current || queue.length === 0) return;
  const next = queue.shift()!;
  current = next;
  next.info.startedAt = Date.now();
  Atomics.store(cancelFlags, CANCEL_SLOT, 0);
  const send = async (): Promise<void> => {
    if (!compute) await startCompute();
    else await computeReady;
    if (next.job.op === 'load') loadingPath = next.job.path;
    if (next.workDoneToken !== undefined) {
      void connection.sendProgress(WorkDoneProgress.type, next.workDoneToken, {
        kind: 'begin',
        title: 'Loading base model',
        cancellable: false,
      });
    }
    compute!.postMessage(next.job);
  };
  send().catch((err: Error) => {
    if (current === next) {
      current = null;
      next.reject(new ResponseError(ErrorCodes.Internal, `Could not start the compute thread: ${err.message}`));
      pump();
    }
  });
}

function enqueue<T>(job: ComputeJob, kind: JobInfo['kind'], token: CancellationToken | undefined, workDoneToken?: string | number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const p: Pending = {
      job,
      info: { id: job.id, kind, startedAt: Date.now() },
      resolve: resolve as (v: unknown) => void,
      reject,
      workDoneToken,
    };
    queue.push(p);
    token?.onCancellationRequested(() => cancel(job.id));
    pump();
  }).finally(() => {
    if (workDoneToken !== undefined) void connection.sendProgress(WorkDoneProgress.type, workDoneToken, { kind: 'end' });
  });
}

/** Cancels a queued or running job; answers at once (the running job stops at its next step or token). */
function cancel(id: string): boolean {
  const i = queue.findIndex((p) => p.job.id === id);
  if (i >= 0) {
    const [p] = queue.splice(i, 1);
    p.reject(new ResponseError(ErrorCodes.Cancelled, `${p.info.kind} cancelled`));
    return true;
  }
  if (current && current.job.id === id && current.job.op !== 'load') {
    Atomics.store(cancelFlags, CANCEL_SLOT, 1);
    return true;
  }
  return false;
}

function stateOf(): WorkerState {
  if (current) return current.job.op === 'load' ? 'loading' : current.job.op === 'train' ? 'training' : 'generating';
  return compute || model ? 'idle' : 'starting';
}

function requireModel(): void {
  const loading = loadingPath !== null || queue.some((p) => p.job.op === 'load');
  if (!model && !loading) throw new ResponseError(ErrorCodes.NoModel, 'No base model is loaded: send aligner/loadModel first.');
}

function newId(prefix: string, given?: string): string {
  return typeof given === 'string' && given.length > 0 && given.length < 200 ? given : `${prefix}-${++seq}`;
}

function toResponseError(err: unknown, code: number = ErrorCodes.InvalidInput): ResponseError<void> {
  if (err instanceof ResponseError) return err;
  return new ResponseError(code, (err as Error)?.message ?? String(err));
}

// ------------------------------------------------------------ requests

connection.onInitialize(() => ({
  capabilities: {},
  serverInfo: { name: 'aligner-worker', version: String(PROTOCOL_VERSION) },
}));

connection.onRequest(StatusRequest, (): StatusResult => ({
  protocol: PROTOCOL_VERSION,
  pid: process.pid,
  state: stateOf(),
  model,
  job: current ? { ...current.info } : null,
  queued: queue.length,
  uptimeMs: Date.now() - startedAt,
}));

connection.onRequest(LoadModelRequest, async (params, token) => {
  if (!params || typeof params.path !== 'string' || !params.path) throw new ResponseError(ErrorCodes.InvalidInput, 'loadModel needs a model folder path');
  const dir = path.resolve(params.path);
  if (!fs.existsSync(path.join(dir, 'config.json'))) {
    throw new ResponseError(ErrorCodes.ModelLoad, `${dir} is not a model folder (no config.json)`);
  }
  if (model && model.path === dir && (!params.device || params.device === 'auto' || params.device === model.device)) return model;
  const job: ComputeJob = { op: 'load', id: newId('load'), path: dir, device: params.device ?? 'auto' };
  return enqueue<ModelInfo>(job, 'load', token, params.workDoneToken);
});

connection.onRequest(TrainRequest, async (params, token): Promise<TrainResult> => {
  requireModel();
  if (!params || typeof params.name !== 'string' || !isValidAdapterName(params.name)) {
    throw new ResponseError(ErrorCodes.InvalidInput, `Invalid adapter name "${params?.name}": use letters, digits, '.', '_', '-' or spaces`);
  }
  if (typeof params.outDir !== 'string' || !params.outDir) throw new ResponseError(ErrorCodes.InvalidInput, 'train needs outDir');
  if (!params.source || typeof params.source !== 'object') throw new ResponseError(ErrorCodes.InvalidInput, 'train needs a source');
  const busy = (current && current.job.op === 'train') || queue.some((p) => p.job.op === 'train');
  if (busy) throw new ResponseError(ErrorCodes.Busy, 'A training job is already running; cancel it or wait for it to finish.');
  const job: ComputeJob = {
    op: 'train',
    id: newId('train', params.jobId),
    name: params.name,
    outDir: path.resolve(params.outDir),
    source: params.source,
    options: params.options ?? {},
    overwrite: !!params.overwrite,
  };
  return enqueue<TrainResult>(job, 'train', token);
});

interface GenInput {
  requestId?: string;
  messages?: unknown;
  prompt?: unknown;
  adapter?: string | null;
  params?: GenerationParams;
}

async function generation(kind: 'chat' | 'raw', params: GenInput, token: CancellationToken): Promise<ChatResult> {
  requireModel();
  if (kind === 'chat') {
    const ok =
      Array.isArray(params?.messages) &&
      params.messages.length > 0 &&
      params.messages.every(
        (m: unknown) =>
          !!m &&
          typeof (m as { content?: unknown }).content === 'string' &&
          ['system', 'user', 'assistant'].includes((m as { role?: string }).role ?? ''),
      );
    if (!ok) throw new ResponseError(ErrorCodes.InvalidInput, 'chat needs messages: [{role, content}]');
  } else if (typeof params?.prompt !== 'string') {
    throw new ResponseError(ErrorCodes.InvalidInput, 'generate needs a prompt string');
  }
  let adapter: string | null = null;
  if (params.adapter) {
    adapter = path.resolve(params.adapter);
    // Refuse an adapter for another base model here, clearly, without queueing.
    if (model) {
      let info;
      try {
        info = adapterInfo(adapter, model);
      } catch (err) {
        throw toResponseError(err);
      }
      if (!info.compatible) throw new ResponseError(ErrorCodes.AdapterMismatch, info.problem ?? 'The adapter does not fit the loaded model');
    }
  }
  const id = newId('gen', params.requestId);
  if (queue.some((p) => p.job.id === id) || current?.job.id === id) throw new ResponseError(ErrorCodes.InvalidInput, `Request id ${id} is already in use`);
  const started = Date.now();
  const job: ComputeJob = {
    op: 'generate',
    id,
    messages: kind === 'chat' ? (params.messages as ChatMessage[]) : undefined,
    prompt: kind === 'raw' ? (params.prompt as string) : undefined,
    adapter,
    params: params.params ?? {},
  };
  const out = await enqueue<GenerateOutcome>(job, 'generate', token);
  return { requestId: id, ...out, ms: Date.now() - started };
}

connection.onRequest(ChatRequest, (params, token) => generation('chat', params, token));
connection.onRequest(GenerateRequest, (params, token) => generation('raw', params, token));

connection.onRequest(CancelRequest, (params) => ({ cancelled: typeof params?.id === 'string' && cancel(params.id) }));

connection.onRequest(AdapterListRequest, (params) => {
  const dirs = Array.isArray(params?.dirs) ? params.dirs.filter((d): d is string => typeof d === 'string') : [];
  return listAdapters(dirs, model);
});

connection.onRequest(AdapterInspectRequest, (params) => {
  try {
    return adapterInfo(params.path, model);
  } catch (err) {
    throw toResponseError(err);
  }
});

connection.onRequest(AdapterImportRequest, (params) => {
  let info;
  try {
    info = adapterInfo(params.path, model);
  } catch (err) {
    throw toResponseError(err);
  }
  if (!info.compatible) throw new ResponseError(ErrorCodes.AdapterMismatch, info.problem ?? 'The adapter does not fit the loaded model');
  const name = params.name ?? info.name;
  if (!isValidAdapterName(name)) throw new ResponseError(ErrorCodes.InvalidInput, `Invalid adapter name "${name}"`);
  const dest = path.join(path.resolve(params.toDir), `${name}.safetensors`);
  if (dest === info.path) return info;
  if (fs.existsSync(dest) && !params.overwrite) throw new ResponseError(ErrorCodes.InvalidInput, `An adapter named "${name}" already exists in ${params.toDir}`);
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const tmp = `${dest}.${process.pid}.tmp`;
  fs.copyFileSync(info.path, tmp);
  fs.renameSync(tmp, dest);
  return adapterInfo(dest, model);
});

connection.onRequest(AdapterDeleteRequest, (params) => {
  const file = path.resolve(String(params?.path ?? ''));
  if (!file.toLowerCase().endsWith('.safetensors')) throw new ResponseError(ErrorCodes.InvalidInput, 'Only .safetensors adapter files can be deleted');
  try {
    adapterInfo(file, null); // refuse to delete anything that is not an adapter
  } catch (err) {
    if (!fs.existsSync(file)) return { deleted: false };
    throw toResponseError(err);
  }
  fs.rmSync(file, { force: true });
  return { deleted: true };
});

connection.onShutdown(async () => {
  for (const p of queue.splice(0)) p.reject(new ResponseError(ErrorCodes.Cancelled, 'worker shutting down'));
  if (current) Atomics.store(cancelFlags, CANCEL_SLOT, 1);
  const w = compute;
  compute = null;
  if (w) await w.terminate();
});

connection.onExit(() => process.exit(0));

void startCompute().catch((err: Error) => log('error', `compute thread did not start: ${err.message}`));
connection.listen();

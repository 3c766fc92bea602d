// The Aligner worker's request handlers: a language-server-style Node process that
// serves the typed requests of src/protocol.ts, one flat handler per request. Started by
// the extension through vscode-languageclient (--node-ipc) or standalone
// (`node server.js --stdio`) by the CLI and the tests. Jobs go to the queue (jobs.ts),
// whose compute thread runs every engine call, so status and cancel are answered at once.

import * as fs from 'fs';
import * as path from 'path';
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
  AdapterHistoryRequest,
  AdapterRevertRequest,
  RefineRequest,
  type RefineResult,
  AdapterImportRequest,
  AdapterInspectRequest,
  AdapterListRequest,
  CancelRequest,
  ChatDeltaNotification,
  ChatRequest,
  CountTokensRequest,
  DescribeModelRequest,
  ErrorCodes,
  GenerateRequest,
  LoadModelRequest,
  LogNotification,
  PROTOCOL_VERSION,
  StatusRequest,
  TrainProgressNotification,
  TrainRequest,
  TrainSampleNotification,
  type ChatResult,
  type JobInfo,
  type ModelInfo,
  type StatusResult,
  type TrainResult,
} from '../protocol';
import { isValidAdapterName } from '../adapter/names';
import { adapterHistory, deleteAdapter, importAdapter, inspectAdapter, listAdapters, revertAdapter } from './adapters';
import { JobQueue } from './jobs';
import { ModelCards } from './describe';
import {
  adapterImportParams,
  adapterListParams,
  chatParams,
  countTokensParams,
  generateParams,
  loadModelParams,
  pathParams,
  adapterRevertParams,
  refineParams,
  trainParams,
} from './params';
import type { ComputeJob, GenerateOutcome } from './messages';

// Past a file-size limit (ulimit -f) the kernel sends SIGXFSZ, which would kill the process
// mid-write; with a handler the write fails with EFBIG instead and is reported (util/atomic.ts).
process.on('SIGXFSZ', () => undefined);

const startedAt = Date.now();
const connection: Connection = createConnection(ProposedFeatures.all);
let seq = 0;

function log(level: 'info' | 'warn' | 'error', message: string): void {
  process.stderr.write(`[aligner-worker ${level}] ${message}\n`);
  void connection.sendNotification(LogNotification, { level, message }).catch(() => undefined);
}

const jobs = new JobQueue({
  log,
  loadProgress: (p, message, percentage) => {
    if (p.workDoneToken !== undefined)
      void connection.sendProgress(WorkDoneProgress.type, p.workDoneToken, { kind: 'report', message, percentage });
  },
  delta: (requestId, delta) => void connection.sendNotification(ChatDeltaNotification, { requestId, delta }),
  progress: (progress) => void connection.sendNotification(TrainProgressNotification, progress),
  sample: (sample) => void connection.sendNotification(TrainSampleNotification, sample),
  started: (p) => {
    if (p.workDoneToken !== undefined) {
      void connection.sendProgress(WorkDoneProgress.type, p.workDoneToken, {
        kind: 'begin',
        title: 'Loading base model',
        cancellable: false,
      });
    }
  },
});

function enqueue<T>(
  job: ComputeJob,
  kind: JobInfo['kind'],
  token: CancellationToken | undefined,
  workDoneToken?: string | number,
): Promise<T> {
  return jobs
    .enqueue<T>(job, kind, (cancel) => token?.onCancellationRequested(cancel), workDoneToken)
    .finally(() => {
      if (workDoneToken !== undefined) void connection.sendProgress(WorkDoneProgress.type, workDoneToken, { kind: 'end' });
    });
}

function requireModel(): void {
  if (!jobs.modelComing()) throw new ResponseError(ErrorCodes.NoModel, 'No base model is loaded: send aligner/loadModel first.');
}

function newId(prefix: string, given?: string): string {
  return typeof given === 'string' && given.length > 0 && given.length < 200 ? given : `${prefix}-${++seq}`;
}

// ------------------------------------------------------------ requests

connection.onInitialize(() => ({
  capabilities: {},
  serverInfo: { name: 'aligner-worker', version: String(PROTOCOL_VERSION) },
}));

connection.onRequest(StatusRequest, (): StatusResult => ({
  protocol: PROTOCOL_VERSION,
  pid: process.pid,
  state: jobs.state(),
  model: jobs.model,
  job: jobs.running(),
  queued: jobs.queued(),
  uptimeMs: Date.now() - startedAt,
}));

connection.onRequest(LoadModelRequest, async (raw, token) => {
  const params = loadModelParams(raw);
  // Paths are made absolute; names (ollama:NAME:TAG, org/name in the HF cache) are resolved by the load job.
  const dir = params.path.startsWith('ollama:') || !fs.existsSync(params.path) ? params.path : path.resolve(params.path);
  const model = jobs.model;
  const quantization = params.quantization ?? 'auto';
  const sameStorage = quantization === 'auto' || quantization === model?.quantization;
  if (model && model.path === dir && (!params.device || params.device === 'auto' || params.device === model.device) && sameStorage)
    return model;
  const job: ComputeJob = { op: 'load', id: newId('load'), path: dir, device: params.device ?? 'auto', quantization };
  return enqueue<ModelInfo>(job, 'load', token, params.workDoneToken);
});

connection.onRequest(TrainRequest, async (raw, token): Promise<TrainResult> => {
  requireModel();
  const params = trainParams(raw, isValidAdapterName);
  if (jobs.hasOp('train') || jobs.hasOp('refine'))
    throw new ResponseError(ErrorCodes.Busy, 'A training job is already running; cancel it or wait for it to finish.');
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

connection.onRequest(RefineRequest, async (raw, token): Promise<RefineResult> => {
  requireModel();
  const params = refineParams(raw);
  if (jobs.hasOp('train') || jobs.hasOp('refine'))
    throw new ResponseError(ErrorCodes.Busy, 'A training job is already running; cancel it or wait for it to finish.');
  const adapter = path.resolve(params.adapter);
  // A file that is not an adapter, or one for another model, is refused here, without queueing.
  if (jobs.model) {
    const info = inspectAdapter(adapter, jobs.model);
    if (!info.compatible) throw new ResponseError(ErrorCodes.AdapterMismatch, info.problem ?? 'The adapter does not fit the loaded model');
  }
  const job: ComputeJob = {
    op: 'refine',
    id: newId('refine', params.jobId),
    adapter,
    pairs: path.resolve(params.pairs),
    options: params.options ?? {},
  };
  return enqueue<RefineResult>(job, 'train', token);
});

async function generation(kind: 'chat' | 'raw', raw: unknown, token: CancellationToken): Promise<ChatResult> {
  requireModel();
  const params = kind === 'chat' ? chatParams(raw) : generateParams(raw);
  let adapter: string | null = null;
  if (params.adapter) {
    adapter = path.resolve(params.adapter);
    // Refuse an adapter for another base model here, clearly, without queueing.
    if (jobs.model) {
      const info = inspectAdapter(adapter, jobs.model);
      if (!info.compatible)
        throw new ResponseError(ErrorCodes.AdapterMismatch, info.problem ?? 'The adapter does not fit the loaded model');
    }
  }
  const id = newId('gen', params.requestId);
  if (jobs.has(id)) throw new ResponseError(ErrorCodes.InvalidInput, `Request id ${id} is already in use`);
  const started = Date.now();
  const job: ComputeJob = {
    op: 'generate',
    id,
    messages: 'messages' in params ? params.messages : undefined,
    prompt: 'prompt' in params ? params.prompt : undefined,
    adapter,
    params: params.params,
  };
  const out = await enqueue<GenerateOutcome>(job, 'generate', token);
  return { requestId: id, ...out, ms: Date.now() - started };
}

connection.onRequest(ChatRequest, (params, token) => generation('chat', params, token));
connection.onRequest(GenerateRequest, (params, token) => generation('raw', params, token));

connection.onRequest(CancelRequest, (params) => ({ cancelled: typeof params?.id === 'string' && jobs.cancel(params.id) }));

// Model cards and token counts come from the model's files, not the compute thread: they are
// answered while a job runs and need no loaded model.
const cards = new ModelCards();

/** A model that cannot be opened is a ModelLoad error naming it. */
async function fromCard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw new ResponseError(ErrorCodes.ModelLoad, (err as Error).message);
  }
}

connection.onRequest(DescribeModelRequest, (raw) => {
  const { path: spec } = pathParams(raw, 'describeModel');
  return fromCard(() => cards.card(spec));
});
connection.onRequest(CountTokensRequest, (raw) => {
  const params = countTokensParams(raw);
  return fromCard(() => cards.countTokens(params.path, params.texts));
});

connection.onRequest(AdapterListRequest, async (raw) => {
  const params = adapterListParams(raw);
  const model = params.model === undefined ? jobs.model : await fromCard(() => cards.card(params.model!));
  return listAdapters(params.dirs, model);
});

connection.onRequest(AdapterInspectRequest, (raw) => inspectAdapter(pathParams(raw, 'adapters/inspect').path, jobs.model));
connection.onRequest(AdapterImportRequest, (raw) => importAdapter(adapterImportParams(raw, isValidAdapterName), jobs.model));
connection.onRequest(AdapterHistoryRequest, (raw) => adapterHistory(path.resolve(pathParams(raw, 'adapters/history').path), jobs.model));
connection.onRequest(AdapterRevertRequest, (raw) => revertAdapter(adapterRevertParams(raw), jobs.model));
connection.onRequest(AdapterDeleteRequest, (raw) => deleteAdapter(path.resolve(pathParams(raw, 'adapters/delete').path)));

connection.onShutdown(() => jobs.shutdown());
connection.onExit(() => process.exit(0));

jobs.warmUp();
connection.listen();

// The one typed protocol between the Aligner worker and its clients (the VS Code
// extension, the CLI, the tests). Every custom request and notification is declared
// here, once; both sides import these objects so a method name or a payload shape
// cannot drift between them. Transport: JSON-RPC 2.0 (vscode-jsonrpc), started as a
// language server (initialize/shutdown/exit) by vscode-languageclient or standalone.
//
// Cancellation uses the standard `$/cancelRequest` (pass a CancellationToken to
// sendRequest); `aligner/cancel` does the same for a job named by its id, from any
// client, and is answered at once.

import { NotificationType, RequestType, RequestType0 } from 'vscode-jsonrpc';
import type { Device } from './engine/types';
import type { FinishReason, GenerateOptions } from './generate/generate';
import type { ChatMessage } from './model/types';
import type { TrainOptions as EngineTrainOptions, TrainProgress as EngineTrainProgress, TrainSummary } from './train/trainer';
import type { TrainSource } from './data/source';

export type { ChatMessage, Device, FinishReason };

export const PROTOCOL_VERSION = 1;

/** Error codes in ResponseError.code (besides JSON-RPC's RequestCancelled = -32800). */
export const ErrorCodes = {
  /** No model is loaded: send aligner/loadModel first. */
  NoModel: -32001,
  /** The adapter was trained for another base model (fingerprint mismatch). */
  AdapterMismatch: -32002,
  /** A training job is already running (one at a time). */
  Busy: -32003,
  /** A file, a dataset or an argument is invalid; the message names it. */
  InvalidInput: -32004,
  /** The model folder could not be loaded. */
  ModelLoad: -32005,
  /** Anything else that failed inside the engine. */
  Internal: -32006,
  /** Cancelled by the client (same value as LSP's RequestCancelled). */
  Cancelled: -32800,
} as const;

// ---------------------------------------------------------------- status

export type WorkerState = 'starting' | 'idle' | 'loading' | 'training' | 'generating';

export interface ModelInfo {
  name: string;
  path: string;
  fingerprint: string;
  /** What adapters written before storage-independent fingerprints recorded for this model file. */
  legacyFingerprint?: string;
  architecture: string;
  /** What actually runs: 'cpu', 'webgpu' or 'cuda'. */
  device: string;
  /** How the linear layers are stored: 'f32', 'q8', 'q4' or 'stored' (a GGUF file's own blocks). */
  quantization: string;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  vocabSize: number;
  hasChatTemplate: boolean;
  loadMs: number;
}

export interface JobInfo {
  id: string;
  /** A refinement (aligner/refine) is a 'train' job. */
  kind: 'load' | 'train' | 'generate';
  startedAt: number;
  /** The last training progress report, for a train job. */
  progress?: TrainProgress;
}

export interface StatusResult {
  protocol: number;
  pid: number;
  state: WorkerState;
  model: ModelInfo | null;
  job: JobInfo | null;
  /** Requests waiting behind the running job. */
  queued: number;
  uptimeMs: number;
}

export const StatusRequest = new RequestType0<StatusResult, void>('aligner/status');

// ---------------------------------------------------------------- load model

export interface LoadModelParams {
  /** A Hugging Face model folder (SPEC §3), a GGUF file, `ollama:NAME[:TAG]` or an `org/name` in the HF cache (src/model/sources.ts). */
  path: string;
  device?: Device;
  /** 'auto' (default): a GGUF file's own quantized blocks when it has them, else q4 from 300M parameters, f32 below. */
  quantization?: QuantizationSetting;
  /** Work-done progress token (LSP `$/progress`), optional. */
  workDoneToken?: string | number;
}

export type QuantizationSetting = 'auto' | 'f32' | 'q8' | 'q4';

export const LoadModelRequest = new RequestType<LoadModelParams, ModelInfo, void>('aligner/loadModel');

// ---------------------------------------------------------------- describe a model, count tokens

/** The special tokens of a fill-in-the-middle prompt: `${prefix}before${suffix}after${middle}`. */
export interface FimTokens {
  prefix: string;
  suffix: string;
  middle: string;
}

/**
 * What a model is, read from its files (config, tokenizer, a hash of the embeddings) without
 * loading it for compute: answered by the worker's request thread while a job runs.
 */
export interface ModelCard {
  name: string;
  /** The model as named in the request (a path or `ollama:NAME:TAG`). */
  path: string;
  fingerprint: string;
  architecture: string;
  /** The model's context window, in tokens (prompt and answer together). */
  contextLength: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  vocabSize: number;
  hasChatTemplate: boolean;
  /** The tokenizer's fill-in-the-middle tokens, or null when it has none. */
  fim: FimTokens | null;
}

export const DescribeModelRequest = new RequestType<{ path: string }, ModelCard, void>('aligner/describeModel');

export interface CountTokensParams {
  /** The model whose tokenizer counts (a path or `ollama:NAME:TAG`, as for aligner/loadModel). */
  path: string;
  /** Each text is counted on its own, without special tokens. */
  texts: string[];
}

export const CountTokensRequest = new RequestType<CountTokensParams, number[], void>('aligner/countTokens');

// ---------------------------------------------------------------- training

export type { TrainSource, TrainSummary };

/**
 * The training settings a client may send: the trainer's own options minus in-memory data and
 * adapters. `steps` 0 or absent: as many steps as the epochs take.
 */
export type TrainOptions = Pick<
  EngineTrainOptions,
  'method' | 'tokens' | 'startLayer' | 'epochs' | 'lr' | 'batchSize' | 'maxLen' | 'valSplit' | 'seed' | 'steps'
>;

export interface TrainParams {
  /** Job id chosen by the client; progress notifications and aligner/cancel use it. */
  jobId: string;
  /** Adapter name (file name without .safetensors). */
  name: string;
  /** Folder the adapter file is written to (created if missing). */
  outDir: string;
  source: TrainSource;
  options?: TrainOptions;
  /** Replace an existing adapter file of the same name. */
  overwrite?: boolean;
}

/** The trainer's progress report, tagged with the job it belongs to. */
export type TrainProgress = EngineTrainProgress & { jobId: string };

export interface TrainResult {
  adapter: AdapterInfo;
  summary: TrainSummary;
  ms: number;
}

export const TrainRequest = new RequestType<TrainParams, TrainResult, void>('aligner/train');
export const TrainProgressNotification = new NotificationType<TrainProgress>('aligner/trainProgress');

/**
 * A short continuation of one fixed prompt with one fixed seed (src/worker/sample.ts), so that
 * the user sees whether the style takes: step 0 is the starting point (the base model, or the
 * adapter training continues from), later steps the adapter at the end of each epoch.
 */
export interface TrainSample {
  jobId: string;
  step: number;
  prompt: string;
  text: string;
}

export const TrainSampleNotification = new NotificationType<TrainSample>('aligner/trainSample');

// ---------------------------------------------------------------- refine from preference pairs

/** What a client may set for a refinement; the rest are DPO's training defaults (src/train/defaults.ts). */
export type RefineOptions = Pick<EngineTrainOptions, 'epochs' | 'steps' | 'lr' | 'batchSize' | 'beta' | 'rpoAlpha' | 'seed'>;

export interface RefineParams {
  /** Job id chosen by the client; progress notifications (aligner/trainProgress) and aligner/cancel use it. */
  jobId: string;
  /**
   * The adapter file to refine: DPO's starting point and reference. On success it is replaced by the
   * refined adapter, and its previous content is kept in its history (aligner/adapters/history).
   */
  adapter: string;
  /** A JSONL file of {prompt, chosen, rejected} pairs (extra fields are ignored). */
  pairs: string;
  options?: RefineOptions;
}

export interface RefineResult extends TrainResult {
  /** The adapter as it was before, now a version in its history. */
  previous: AdapterVersion;
}

/** DPO on preference pairs from an adapter (`aligner refine` in the worker); progress as aligner/trainProgress. */
export const RefineRequest = new RequestType<RefineParams, RefineResult, void>('aligner/refine');

// ---------------------------------------------------------------- chat / generate

/** The sampling settings a client may send; the engine's own GenerateOptions, minus callbacks. */
export type GenerationParams = Pick<
  GenerateOptions,
  'maxNewTokens' | 'temperature' | 'topK' | 'topP' | 'repetitionPenalty' | 'seed' | 'stop'
>;

export interface ChatParams {
  /** Request id chosen by the client; deltas and aligner/cancel use it. */
  requestId: string;
  /**
   * The conversation. The oldest turns that do not fit the model's context (with room for
   * maxNewTokens) are left out, counted in tokens; a last message that alone does not fit
   * is an InvalidInput error.
   */
  messages: ChatMessage[];
  /** Adapter file to apply, or null for the base model. */
  adapter: string | null;
  params?: GenerationParams;
}

export interface GenerateParams {
  requestId: string;
  /** Raw prompt text, continued as is (no chat template). */
  prompt: string;
  adapter: string | null;
  params?: GenerationParams;
}

export interface ChatResult {
  requestId: string;
  text: string;
  /**
   * The text the model continued, as `aligner refine` reads a pair's `prompt` (BOS + prompt + answer):
   * the kept conversation rendered by the chat template with the generation prompt, the last user
   * message for a model without one (which is continued as plain text), or the raw prompt.
   */
  prompt: string;
  finishReason: FinishReason;
  promptTokens: number;
  completionTokens: number;
  ms: number;
}

export interface ChatDelta {
  requestId: string;
  /** Appended text; the deltas of one request concatenate to ChatResult.text. */
  delta: string;
}

export const ChatRequest = new RequestType<ChatParams, ChatResult, void>('aligner/chat');
export const GenerateRequest = new RequestType<GenerateParams, ChatResult, void>('aligner/generate');
export const ChatDeltaNotification = new NotificationType<ChatDelta>('aligner/chatDelta');

// ---------------------------------------------------------------- cancel

export interface CancelParams {
  /** A TrainParams.jobId or ChatParams/GenerateParams.requestId. */
  id: string;
}

/**
 * Stops a queued or running job (a load too). A running job stops at its next step or token;
 * one that does not within a few seconds has its thread stopped, and the model is loaded again.
 */
export const CancelRequest = new RequestType<CancelParams, { cancelled: boolean }, void>('aligner/cancel');

// ---------------------------------------------------------------- adapters

export interface AdapterInfo {
  /** File name without .safetensors. */
  name: string;
  path: string;
  bytes: number;
  tokens: number;
  startLayer: number;
  method: string;
  baseModel: string;
  baseFingerprint: string;
  /** True when it fits the loaded model (false when none is loaded). */
  compatible: boolean;
  /** Why it does not fit, when it does not. */
  problem?: string;
  /** All string metadata of the file (training summary, date, ...). */
  metadata: Record<string, string>;
}

export interface AdapterListParams {
  /** Folders to scan for *.safetensors (missing folders are skipped). */
  dirs: string[];
  /** Judge `compatible` against this model (a path, as for aligner/describeModel) instead of the loaded one. */
  model?: string;
}

export const AdapterListRequest = new RequestType<AdapterListParams, AdapterInfo[], void>('aligner/adapters/list');
export const AdapterInspectRequest = new RequestType<{ path: string }, AdapterInfo, void>('aligner/adapters/inspect');
export interface AdapterImportParams {
  path: string;
  toDir: string;
  name?: string;
  overwrite?: boolean;
}
/** Copies an adapter file into a library folder after checking it fits the loaded model. */
export const AdapterImportRequest = new RequestType<AdapterImportParams, AdapterInfo, void>('aligner/adapters/import');
export const AdapterDeleteRequest = new RequestType<{ path: string }, { deleted: boolean }, void>('aligner/adapters/delete');

/** An earlier version of an adapter, kept in `<name>.history/` beside it (src/adapter/history.ts). */
export interface AdapterVersion {
  /** The version's file. */
  path: string;
  /** When it stopped being the current version (ISO 8601). */
  kept: string;
  info: AdapterInfo;
}

/** The earlier versions of the adapter at `path`, newest first. */
export const AdapterHistoryRequest = new RequestType<{ path: string }, AdapterVersion[], void>('aligner/adapters/history');
export interface AdapterRevertParams {
  /** The adapter file. */
  path: string;
  /** One of its versions (AdapterVersion.path). */
  version: string;
}
/** Makes a version current again; the current content is kept as a version first, so nothing is lost. */
export const AdapterRevertRequest = new RequestType<AdapterRevertParams, { adapter: AdapterInfo; kept: AdapterVersion }, void>(
  'aligner/adapters/revert',
);

// ---------------------------------------------------------------- log

export const LogNotification = new NotificationType<{ level: 'info' | 'warn' | 'error'; message: string }>('aligner/log');

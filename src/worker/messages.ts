// Messages between the worker's JSON-RPC thread (server.ts) and its compute thread
// (compute.ts). Only the compute thread touches onnxruntime, whose session.run blocks
// the thread it runs on; the JSON-RPC thread stays free to answer status and cancel.

import type {
  ChatMessage,
  Device,
  GenerationParams,
  ModelInfo,
  RefineOptions,
  RefineResult,
  QuantizationSetting,
  TrainOptions,
  TrainProgress,
  TrainResult,
  TrainSample,
  TrainSource,
} from '../protocol';

export type ComputeJob =
  | { op: 'load'; id: string; path: string; device: Device; quantization: QuantizationSetting }
  | {
      op: 'generate';
      id: string;
      messages?: ChatMessage[];
      prompt?: string;
      adapter: string | null;
      params: GenerationParams;
    }
  | {
      op: 'train';
      id: string;
      name: string;
      outDir: string;
      source: TrainSource;
      options: TrainOptions;
      overwrite: boolean;
    }
  | { op: 'refine'; id: string; adapter: string; pairs: string; options: RefineOptions };

export type ComputeMessage =
  | { type: 'ready' }
  | { type: 'loadProgress'; id: string; message: string; percentage?: number }
  | { type: 'delta'; id: string; delta: string }
  | { type: 'progress'; id: string; progress: TrainProgress }
  | { type: 'sample'; id: string; sample: TrainSample }
  | { type: 'result'; id: string; result: ModelInfo | GenerateOutcome | TrainResult | RefineResult }
  | { type: 'error'; id: string; code: number; message: string }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; message: string };

export interface GenerateOutcome {
  text: string;
  /** ChatResult.prompt. */
  prompt: string;
  finishReason: 'eos' | 'length' | 'stop' | 'cancelled';
  promptTokens: number;
  completionTokens: number;
}

/** Index of the cancel flag in the shared Int32Array: 1 means "stop the running job". */
export const CANCEL_SLOT = 0;

// The worker's job queue and its compute thread: one job runs at a time in the compute
// thread (compute.ts); the others wait here, in order. This module owns the thread's
// life (start; restart, with the model loaded again, after a crash or a job that
// ignored its cancellation), the shared cancel flag and the worker's state as status
// reports it. It knows nothing about JSON-RPC beyond the events it emits.

import * as path from 'path';
import { Worker } from 'worker_threads';
import { ResponseError } from 'vscode-languageserver/node';
import {
  ErrorCodes,
  type Device,
  type QuantizationSetting,
  type JobInfo,
  type ModelInfo,
  type TrainProgress,
  type TrainSample,
  type WorkerState,
} from '../protocol';
import { CANCEL_SLOT, type ComputeJob, type ComputeMessage } from './messages';

/** What the queue tells the request handlers (server.ts) while jobs run. */
export interface JobEvents {
  log(level: 'info' | 'warn' | 'error', message: string): void;
  loadProgress(job: Pending, message: string, percentage?: number): void;
  delta(id: string, delta: string): void;
  progress(progress: TrainProgress): void;
  sample(sample: TrainSample): void;
  /** A job left the queue for the compute thread. */
  started(job: Pending): void;
}

export interface Pending {
  job: ComputeJob;
  info: JobInfo;
  resolve: (v: unknown) => void;
  reject: (e: ResponseError<void>) => void;
  workDoneToken?: string | number;
}

/** How long a cancelled job may take to reach its next cancellation check before its thread is stopped. */
export const CANCEL_GRACE_MS = 3000;

export class JobQueue {
  private readonly cancelBuffer = new SharedArrayBuffer(4);
  private readonly cancelFlags = new Int32Array(this.cancelBuffer);
  private compute: Worker | null = null;
  private computeReady: Promise<void> | null = null;
  private current: Pending | null = null;
  private readonly queue: Pending[] = [];
  /** The loaded model, or null. */
  model: ModelInfo | null = null;
  private reloads = 0;

  /** `computeFile`: the compute thread's script (tests give one that misbehaves). */
  constructor(
    private readonly events: JobEvents,
    private readonly computeFile = path.join(__dirname, 'compute.js'),
  ) {}

  /** Starts the compute thread ahead of the first job (it takes a moment to import onnxruntime). */
  warmUp(): void {
    void this.startCompute().catch((err: Error) => this.events.log('error', `compute thread did not start: ${err.message}`));
  }

  private startCompute(): Promise<void> {
    const w = new Worker(this.computeFile, { workerData: { cancel: this.cancelBuffer }, stdout: true, stderr: true });
    this.compute = w;
    // The compute thread's console must never reach our stdout (the JSON-RPC stream in --stdio mode).
    w.stdout.on('data', (d: Buffer) => process.stderr.write(d));
    w.stderr.on('data', (d: Buffer) => process.stderr.write(d));
    this.computeReady = new Promise<void>((resolve, reject) => {
      const onMsg = (m: ComputeMessage): void => {
        if (m.type === 'ready') {
          w.off('message', onMsg);
          resolve();
        }
      };
      w.on('message', onMsg);
      w.once('error', reject);
      // A thread that exits before it is ready (a failed import) must not leave a job waiting for ever.
      w.once('exit', (code) => reject(new Error(`the compute thread exited (code ${code}) before it was ready`)));
    });
    w.on('message', (m: ComputeMessage) => this.onComputeMessage(m));
    w.on('error', (err) => this.events.log('error', `compute thread failed: ${err.stack ?? err.message}`));
    w.on('exit', (code) => this.onExit(w, new ResponseError(ErrorCodes.Internal, `The compute thread stopped (exit code ${code}).`)));
    return this.computeReady;
  }

  /**
   * The compute thread is gone (crashed, or stopped because a cancelled job did not stop):
   * the running job fails with `error`, and the model that was loaded is loaded again in a
   * fresh thread ahead of the waiting jobs, unless loading a model is what crashed it.
   */
  private onExit(w: Worker, error: ResponseError<void>, cancelled = false): void {
    if (this.compute !== w) return;
    this.compute = null;
    this.computeReady = null;
    const lost = this.model;
    this.model = null;
    const failed = this.current;
    this.current = null;
    this.events.log('error', `compute thread stopped: ${error.message}`);
    failed?.reject(error);
    if (lost && (failed?.job.op !== 'load' || cancelled)) {
      const job: ComputeJob = {
        op: 'load',
        id: `reload-${++this.reloads}`,
        path: lost.path,
        device: lost.device as Device,
        quantization: lost.quantization as QuantizationSetting,
      };
      this.events.log('info', `loading ${lost.name} again`);
      this.queue.unshift({
        job,
        info: { id: job.id, kind: 'load', startedAt: Date.now() },
        resolve: () => undefined,
        reject: () => undefined,
      });
    }
    this.pump();
  }

  private onComputeMessage(m: ComputeMessage): void {
    const current = this.current;
    switch (m.type) {
      case 'ready':
        return;
      case 'log':
        this.events.log(m.level, m.message);
        return;
      case 'loadProgress':
        if (current && current.job.id === m.id) this.events.loadProgress(current, m.message, m.percentage);
        return;
      case 'delta':
        this.events.delta(m.id, m.delta);
        return;
      case 'progress':
        if (current && current.job.id === m.id) current.info.progress = m.progress;
        this.events.progress(m.progress);
        return;
      case 'sample':
        this.events.sample(m.sample);
        return;
      case 'result':
      case 'error': {
        if (!current || current.job.id !== m.id) return;
        this.current = null;
        if (m.type === 'result') {
          if (current.job.op === 'load') this.model = m.result as ModelInfo;
          current.resolve(m.result);
        } else {
          current.reject(new ResponseError(m.code, m.message));
        }
        this.pump();
        return;
      }
    }
  }

  private pump(): void {
    if (this.current || this.queue.length === 0) return;
    const next = this.queue.shift()!;
    this.current = next;
    next.info.startedAt = Date.now();
    Atomics.store(this.cancelFlags, CANCEL_SLOT, 0);
    const send = async (): Promise<void> => {
      if (!this.compute) await this.startCompute();
      else await this.computeReady;
      this.events.started(next);
      this.compute!.postMessage(next.job);
    };
    send().catch((err: Error) => {
      if (this.current === next) {
        this.current = null;
        next.reject(new ResponseError(ErrorCodes.Internal, `Could not start the compute thread: ${err.message}`));
        this.pump();
      }
    });
  }

  /** Queues a job; the promise settles with its result. `onCancelled` ties a client's cancellation to it. */
  enqueue<T>(
    job: ComputeJob,
    kind: JobInfo['kind'],
    onCancelled?: (cancel: () => void) => void,
    workDoneToken?: string | number,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({
        job,
        info: { id: job.id, kind, startedAt: Date.now() },
        resolve: resolve as (v: unknown) => void,
        reject,
        workDoneToken,
      });
      onCancelled?.(() => this.cancel(job.id));
      this.pump();
    });
  }

  /** Cancels a queued or running job; answers at once (the running job stops at its next step or token). */
  cancel(id: string): boolean {
    const i = this.queue.findIndex((p) => p.job.id === id);
    if (i >= 0) {
      const [p] = this.queue.splice(i, 1);
      p.reject(new ResponseError(ErrorCodes.Cancelled, `${p.info.kind} cancelled`));
      return true;
    }
    const running = this.current;
    if (running && running.job.id === id) {
      Atomics.store(this.cancelFlags, CANCEL_SLOT, 1);
      const w = this.compute;
      const timer = setTimeout(() => {
        if (this.current !== running || !w || this.compute !== w) return;
        void w.terminate();
        this.onExit(w, new ResponseError(ErrorCodes.Cancelled, `${running.info.kind} cancelled (its thread was stopped)`), true);
      }, CANCEL_GRACE_MS);
      timer.unref();
      return true;
    }
    return false;
  }

  state(): WorkerState {
    const op = this.current?.job.op;
    if (op) return op === 'load' ? 'loading' : op === 'generate' ? 'generating' : 'training';
    return this.compute || this.model ? 'idle' : 'starting';
  }

  /** The running job, for status. */
  running(): JobInfo | null {
    return this.current ? { ...this.current.info } : null;
  }

  queued(): number {
    return this.queue.length;
  }

  /** Whether a job with this id is queued or running. */
  has(id: string): boolean {
    return this.current?.job.id === id || this.queue.some((p) => p.job.id === id);
  }

  /** Whether a job of this kind is queued or running. */
  hasOp(op: ComputeJob['op']): boolean {
    return this.current?.job.op === op || this.queue.some((p) => p.job.op === op);
  }

  /** A model is loaded, or a load is queued or running. */
  modelComing(): boolean {
    return this.model !== null || this.hasOp('load');
  }

  async shutdown(): Promise<void> {
    for (const p of this.queue.splice(0)) p.reject(new ResponseError(ErrorCodes.Cancelled, 'worker shutting down'));
    if (this.current) Atomics.store(this.cancelFlags, CANCEL_SLOT, 1);
    const w = this.compute;
    this.compute = null;
    if (w) await w.terminate();
  }
}

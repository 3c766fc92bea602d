// Chat templates with time and memory limits. A template is Jinja code shipped with the
// model; one that loops (`range(2e7)`) would hold the calling thread for minutes and one
// that allocates without end would take the worker's memory or abort it, so it is rendered
// in a child process with a small heap (templateProcess.ts) behind a helper thread
// (templateThread.ts) that the caller waits for synchronously, at most RENDER_LIMIT_MS;
// the process is killed when the limit passes, and its death is reported as the template's.

import * as fs from 'fs';
import * as path from 'path';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'worker_threads';
import { Template } from '@huggingface/jinja';
import { ModelLoadError } from './errors';

/** Longest a render may take; real templates take milliseconds. */
export const RENDER_LIMIT_MS = 3000;
/** Heap of the render process; real templates need well under a megabyte. */
export const RENDER_HEAP_MB = 64;
/** Extra time the first render allows for the thread and the process to start. */
const STARTUP_MS = 10_000;

/** The shared state word: what the caller waiting for a render wakes up to. */
export const RenderState = { Waiting: 0, Done: 1, OutOfMemory: 2, Stopped: 3 } as const;
export type RenderState = (typeof RenderState)[keyof typeof RenderState];

let thread: { worker: Worker; port: MessagePort; state: Int32Array; fresh: boolean } | null = null;

function renderThread(): NonNullable<typeof thread> {
  if (thread && Atomics.load(thread.state, 0) <= RenderState.Done) return thread;
  stopThread();
  // Beside this file when run from out/, beside the bundled worker in the packaged extension
  // (also for the bundled CLI in out/src/cli).
  const dirs = [__dirname, path.join(__dirname, '..', 'model'), path.join(__dirname, '..', 'worker')];
  const dir = dirs.find((d) => fs.existsSync(path.join(d, 'templateThread.js')));
  if (!dir) throw new ModelLoadError(`templateThread.js is missing beside ${__dirname}`);
  const { port1, port2 } = new MessageChannel();
  const state = new Int32Array(new SharedArrayBuffer(8));
  const worker = new Worker(path.join(dir, 'templateThread.js'), {
    workerData: { port: port2, state: state.buffer, script: path.join(dir, 'templateProcess.js') },
    transferList: [port2],
    stdout: true,
    stderr: true,
  });
  worker.unref();
  port1.unref();
  worker.on('error', () => undefined); // a render that fails reports it below
  thread = { worker, port: port1, state, fresh: true };
  return thread;
}

/** Ends the render process and its thread. */
function stopThread(): void {
  if (!thread) return;
  const pid = Atomics.load(thread.state, 1);
  if (pid > 0) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  void thread.worker.terminate();
  thread.port.close();
  thread = null;
}

/** A chat template, parsed once here (syntax errors show at load) and rendered with a time limit. */
export class ChatTemplate {
  /** `source` names the file the template came from, for errors. */
  constructor(
    private readonly text: string,
    private readonly source: string,
  ) {
    try {
      new Template(text);
    } catch (err) {
      throw new ModelLoadError(`${source}: chat_template does not parse (${(err as Error).message})`);
    }
  }

  render(context: Record<string, unknown>): string {
    const t = renderThread();
    Atomics.store(t.state, 0, RenderState.Waiting);
    t.port.postMessage({ source: this.text, context });
    const limit = RENDER_LIMIT_MS + (t.fresh ? STARTUP_MS : 0);
    t.fresh = false;
    Atomics.wait(t.state, 0, RenderState.Waiting, limit);
    const outcome = Atomics.load(t.state, 0);
    if (outcome !== RenderState.Done) {
      stopThread();
      const why =
        outcome === RenderState.OutOfMemory
          ? `needed more than ${RENDER_HEAP_MB} MB of memory (it may allocate without end)`
          : outcome === RenderState.Stopped
            ? 'stopped its render process'
            : `did not finish within ${RENDER_LIMIT_MS / 1000} s (it may loop for ever)`;
      throw new ModelLoadError(`${this.source}: chat_template ${why}; this model's chat template cannot be used`);
    }
    const reply = receiveMessageOnPort(t.port)?.message as { text: string } | { error: string } | undefined;
    if (!reply) throw new ModelLoadError(`${this.source}: chat_template rendering failed`);
    if ('error' in reply) throw new ModelLoadError(`${this.source}: chat_template failed: ${reply.error.slice(0, 300)}`);
    return reply.text;
  }
}

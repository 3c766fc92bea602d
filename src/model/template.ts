// Chat templates with a time limit. A template is Jinja code shipped with the model;
// one that loops (`range(2e7)`) would hold the calling thread for minutes, so it is
// rendered in a helper thread (templateThread.ts) that the caller waits for
// synchronously, at most RENDER_LIMIT_MS, and terminates when the limit passes.

import * as fs from 'fs';
import * as path from 'path';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'worker_threads';
import { Template } from '@huggingface/jinja';
import { ModelLoadError } from './errors';

/** Longest a render may take; real templates take milliseconds. */
export const RENDER_LIMIT_MS = 3000;
/** Extra time the first render allows for the thread to start. */
const STARTUP_MS = 10_000;

let thread: { worker: Worker; port: MessagePort; done: Int32Array; fresh: boolean } | null = null;

function renderThread(): NonNullable<typeof thread> {
  if (thread) return thread;
  // Beside this file when run from out/, beside the bundled worker in the packaged extension.
  const candidates = [path.join(__dirname, 'templateThread.js'), path.join(__dirname, '..', 'model', 'templateThread.js')];
  const script = candidates.find((f) => fs.existsSync(f));
  if (!script) throw new ModelLoadError(`templateThread.js is missing beside ${__dirname}`);
  const { port1, port2 } = new MessageChannel();
  const done = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(script, {
    workerData: { port: port2, done: done.buffer },
    transferList: [port2],
    stdout: true,
    stderr: true,
  });
  worker.unref();
  port1.unref();
  worker.on('error', () => undefined); // a render that fails reports it below
  thread = { worker, port: port1, done, fresh: true };
  return thread;
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
    Atomics.store(t.done, 0, 0);
    t.port.postMessage({ source: this.text, context });
    const limit = RENDER_LIMIT_MS + (t.fresh ? STARTUP_MS : 0);
    t.fresh = false;
    if (Atomics.wait(t.done, 0, 0, limit) === 'timed-out') {
      thread = null;
      void t.worker.terminate();
      throw new ModelLoadError(
        `${this.source}: chat_template did not finish within ${RENDER_LIMIT_MS / 1000} s (it may loop for ever); ` +
          "this model's chat template cannot be used",
      );
    }
    const reply = receiveMessageOnPort(t.port)?.message as { text: string } | { error: string } | undefined;
    if (!reply) throw new ModelLoadError(`${this.source}: chat_template rendering failed`);
    if ('error' in reply) throw new ModelLoadError(`${this.source}: chat_template failed: ${reply.error.slice(0, 300)}`);
    return reply.text;
  }
}

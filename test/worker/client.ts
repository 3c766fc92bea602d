// Starts the real worker (out/src/worker/server.js) as a child process and talks to it
// over JSON-RPC on stdio, as the CLI and any non-VS Code client would.

import * as assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'child_process';
import * as path from 'path';
import {
  createMessageConnection,
  ResponseError,
  StreamMessageReader,
  StreamMessageWriter,
  type MessageConnection,
} from 'vscode-jsonrpc/node';

export const SERVER = path.resolve(__dirname, '..', '..', 'src', 'worker', 'server.js');

export interface WorkerHandle {
  child: ChildProcess;
  conn: MessageConnection;
  stderr: () => string;
  stop: () => Promise<void>;
}

/** `fileSizeLimitKiB` runs the worker under `ulimit -f` (a full disk, as far as the worker can tell). */
export async function startWorker(env: Record<string, string> = {}, fileSizeLimitKiB?: number): Promise<WorkerHandle> {
  const [cmd, args] =
    fileSizeLimitKiB === undefined
      ? [process.execPath, [SERVER, '--stdio']]
      : ['bash', ['-c', `ulimit -f ${fileSizeLimitKiB} && exec "$0" "$@"`, process.execPath, SERVER, '--stdio']];
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    if (process.env.ALIGNER_TEST_VERBOSE) process.stderr.write(d);
  });
  const conn = createMessageConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
  conn.listen();
  await conn.sendRequest('initialize', { processId: process.pid, rootUri: null, capabilities: {} });
  conn.sendNotification('initialized', {});
  const stop = async (): Promise<void> => {
    // A worker killed by a signal has no exit code, only a signal code; its 'exit' event has passed either way.
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    try {
      await Promise.race([conn.sendRequest('shutdown'), new Promise((r) => setTimeout(r, 2000))]);
      conn.sendNotification('exit');
    } catch {
      /* already gone */
    }
    const t = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
    conn.dispose();
  };
  return { child, conn, stderr: () => err, stop };
}

/** Awaits `p` and checks it fails with a JSON-RPC error of `code` (and a message matching `pattern`). */
export async function rejectsWith(p: Promise<unknown>, code: number, pattern?: RegExp): Promise<ResponseError<unknown>> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ResponseError, `expected a ResponseError, got ${String(err)}`);
    assert.equal(err.code, code, `expected code ${code}, got ${err.code}: ${err.message}`);
    if (pattern) assert.match(err.message, pattern);
    return err;
  }
  assert.fail(`expected an error with code ${code}`);
}

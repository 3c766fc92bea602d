// Starts the real worker (out/src/worker/server.js) as a child process and talks to it
// over JSON-RPC on stdio, as the CLI and any non-VS Code client would.

import { spawn, type ChildProcess } from 'child_process';
import * as path from 'path';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter, type MessageConnection } from 'vscode-jsonrpc/node';

export const SERVER = path.resolve(__dirname, '..', '..', 'src', 'worker', 'server.js');

export interface WorkerHandle {
  child: ChildProcess;
  conn: MessageConnection;
  stderr: () => string;
  stop: () => Promise<void>;
}

export async function startWorker(env: Record<string, string> = {}): Promise<WorkerHandle> {
  const child = spawn(process.execPath, [SERVER, '--stdio'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
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
    if (child.exitCode !== null) return;
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

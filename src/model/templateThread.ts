// The thread between template.ts and the render process (templateProcess.ts). template.ts waits
// for a render in Atomics.wait, so its own event loop can neither talk to a child process nor
// see it die; this thread's loop does both: it passes each render to the process and its reply
// back, and when the process dies (its heap limit reached by a template that allocates without
// end, or any other exit) it wakes the waiting caller with the reason in the shared state.

import { fork } from 'child_process';
import { workerData, type MessagePort } from 'worker_threads';
import { RENDER_HEAP_MB, RenderState } from './template';

const { port, state: buffer, script } = workerData as { port: MessagePort; state: SharedArrayBuffer; script: string };
/** [0]: a RenderState; [1]: the render process's pid, which template.ts kills when a render runs too long. */
const state = new Int32Array(buffer);

function wake(outcome: RenderState): void {
  Atomics.store(state, 0, outcome);
  Atomics.notify(state, 0);
}

const child = fork(script, [], {
  execArgv: [`--max-old-space-size=${RENDER_HEAP_MB}`, '--max-semi-space-size=4'],
  stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
  serialization: 'advanced',
});
Atomics.store(state, 1, child.pid ?? 0);
port.on('message', (request) => child.send(request));
child.on('message', (reply) => {
  port.postMessage(reply);
  wake(RenderState.Done);
});
// V8 aborts a process whose heap limit an allocation cannot fit.
child.on('exit', (_code, signal) => {
  wake(signal === 'SIGABRT' ? RenderState.OutOfMemory : RenderState.Stopped);
  port.close();
});
child.on('error', () => wake(RenderState.Stopped));

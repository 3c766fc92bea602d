// The thread that renders chat templates for template.ts: a model's Jinja template is
// code from the model's files, so it runs here, where a loop that never ends can be
// stopped by terminating the thread. Compiled templates are kept by source text.

import { workerData, type MessagePort } from 'worker_threads';
import { Template } from '@huggingface/jinja';

const port = workerData.port as MessagePort;
const done = new Int32Array(workerData.done as SharedArrayBuffer);
const compiled = new Map<string, Template>();

port.on('message', ({ source, context }: { source: string; context: Record<string, unknown> }) => {
  let reply: { text: string } | { error: string };
  try {
    let template = compiled.get(source);
    if (!template) {
      template = new Template(source);
      if (compiled.size >= 8) compiled.clear();
      compiled.set(source, template);
    }
    reply = { text: template.render(context) };
  } catch (err) {
    reply = { error: (err as Error)?.message ?? String(err) };
  }
  port.postMessage(reply);
  Atomics.store(done, 0, 1);
  Atomics.notify(done, 0);
});

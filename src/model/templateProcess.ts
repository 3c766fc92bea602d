// The process that renders chat templates. A model's Jinja template is code from the model's
// files: it runs here, with a small heap (--max-old-space-size, set by templateThread.ts), so
// a template that allocates without end ends this process (V8 aborts it when one allocation
// outgrows the heap, node#47224) and never the worker. Compiled templates are kept by source.

import * as vm from 'vm';
import { Template } from '@huggingface/jinja';
import { RENDER_LIMIT_MS } from './template';

/**
 * The caller stops a render at RENDER_LIMIT_MS by killing this process; this limit, a vm
 * timeout (which interrupts any code of the isolate), ends a render of an orphan, whose
 * worker died without killing it and which could loop for hours otherwise.
 */
const SELF_LIMIT_MS = 2 * RENDER_LIMIT_MS;
const run = new vm.Script('render()');

const compiled = new Map<string, Template>();

process.on('message', ({ source, context }: { source: string; context: Record<string, unknown> }) => {
  let reply: { text: string } | { error: string };
  try {
    let template = compiled.get(source);
    if (!template) {
      template = new Template(source);
      if (compiled.size >= 8) compiled.clear();
      compiled.set(source, template);
    }
    const t = template;
    reply = { text: run.runInNewContext({ render: () => t.render(context) }, { timeout: SELF_LIMIT_MS }) as string };
  } catch (err) {
    reply = { error: (err as Error)?.message ?? String(err) };
  }
  process.send!(reply);
});
// The worker that started this process has gone.
process.on('disconnect', () => process.exit(0));

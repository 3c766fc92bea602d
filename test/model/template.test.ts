// Chat templates are code from the model's files: a render is bounded in time and in memory,
// and either limit is reported as an error of that template, after which templates still render
// (issue 6, defect 5 and the template thread's memory cap).

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { ChatTemplate, RENDER_HEAP_MB } from '../../src/model/template';
import { ModelLoadError } from '../../src/model/errors';

const GOOD = '{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}';
const messages = [{ role: 'user', content: 'hi' }];

test('a template renders in its process', () => {
  assert.equal(new ChatTemplate(GOOD, 'good/tokenizer_config.json').render({ messages }), '<user>hi');
});

test('a template that allocates without end is stopped at the heap limit and named; the next template renders', () => {
  // range(1e8) alone is one array of 1e8 numbers (800 MB and more while it grows): in a worker
  // thread with resourceLimits V8 aborts the whole process on it (node#47224).
  const hungry = new ChatTemplate('{% for i in range(100000000) %}{% endfor %}', 'hungry/tokenizer_config.json');
  assert.equal(new ChatTemplate(GOOD, 'good/tokenizer_config.json').render({ messages }), '<user>hi'); // process started
  const t0 = Date.now();
  assert.throws(
    () => hungry.render({ messages }),
    (err: Error) =>
      err instanceof ModelLoadError &&
      err.message.startsWith('hungry/tokenizer_config.json: chat_template needed more than') &&
      err.message.includes(`${RENDER_HEAP_MB} MB`) &&
      err.message.endsWith("this model's chat template cannot be used"),
  );
  const ms = Date.now() - t0;
  // Reported when the thread dies, not when the time limit passes (its message would differ).
  process.stderr.write(`# out-of-memory template reported after ${ms} ms\n`);
  assert.equal(new ChatTemplate(GOOD, 'good/tokenizer_config.json').render({ messages }), '<user>hi');
});

test('a template that loops is stopped at the time limit and named; the next template renders', () => {
  // 25 million iterations that allocate nothing lasting: only the time limit stops them.
  const looping = new ChatTemplate(
    '{% for i in range(5000) %}{% for j in range(5000) %}{% endfor %}{% endfor %}',
    'looping/tokenizer_config.json',
  );
  assert.throws(
    () => looping.render({ messages }),
    /^ModelLoadError: looping\/tokenizer_config\.json: chat_template did not finish within 3 s/,
  );
  assert.equal(new ChatTemplate(GOOD, 'good/tokenizer_config.json').render({ messages }), '<user>hi');
});

test('a template error is reported with the template file', () => {
  const broken = new ChatTemplate('{{ messages[0].content.nope() }}', 'broken/tokenizer_config.json');
  assert.throws(() => broken.render({ messages }), /broken\/tokenizer_config\.json: chat_template failed: /);
});

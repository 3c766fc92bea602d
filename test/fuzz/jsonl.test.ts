// Fuzz: JSONL training files of every form (text, prompt/completion, messages, preference),
// valid, mixed, with wrong field types, broken JSON and random lines, as text and as files.

import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import * as fc from 'fast-check';
import { DataError, EmptyDataError } from '../../src/data/errors';
import { parseJsonl, readJsonl } from '../../src/data/jsonl';
import { tempDir } from '../model/paths';
import { fuzz, typedOrResult } from './fuzz';

const text = fc.string({ maxLength: 20 });
const value = fc.oneof({ weight: 4, arbitrary: text }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) });
const message = fc.record(
  {
    role: fc.oneof({ weight: 5, arbitrary: fc.constantFrom('system', 'user', 'assistant') }, { weight: 1, arbitrary: value }),
    content: value,
  },
  { requiredKeys: [] },
);
const record = fc.oneof(
  fc.record({ text: value }),
  fc.record({ prompt: value, completion: value }),
  fc.record({ messages: fc.oneof({ weight: 5, arbitrary: fc.array(message, { maxLength: 4 }) }, { weight: 1, arbitrary: value }) }),
  fc.record({ prompt: value, chosen: value, rejected: value }),
  fc.dictionary(fc.constantFrom('text', 'prompt', 'completion', 'messages', 'chosen', 'rejected', 'other'), value, { maxKeys: 4 }),
);
const line = fc.oneof(
  { weight: 8, arbitrary: record.map((r) => JSON.stringify(r)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 1, arbitrary: fc.constantFrom('', '   ', '[]', 'null', '{', '"x"') },
);
/** One form for the whole file most of the time, so that valid files are common. */
const file = fc
  .oneof(
    fc.constantFrom('text', 'prompt', 'messages', 'chosen').chain((key) =>
      fc
        .array(
          record.filter((r) => key in r),
          { minLength: 1, maxLength: 6 },
        )
        .map((rs) => rs.map((r) => JSON.stringify(r))),
    ),
    fc.array(line, { maxLength: 8 }),
  )
  .chain((lines) => fc.constantFrom('\n', '\r\n').map((eol) => lines.join(eol)));

test('fuzz: JSONL records of every form (parseJsonl, readJsonl)', async (t) => {
  const dir = tempDir();
  let n = 0;
  await fuzz(
    t,
    'JSONL records',
    file,
    (content) => {
      const set = typedOrResult(() => parseJsonl(content, 'data.jsonl'), [DataError, EmptyDataError]);
      const name = path.join(dir, `d${n++}.jsonl`);
      fs.writeFileSync(name, content);
      const fromFile = typedOrResult(() => readJsonl(name), [DataError, EmptyDataError]);
      fs.rmSync(name);
      assert.equal(set === null, fromFile === null);
      if (!set) return;
      assert.ok(set.records.length > 0);
      for (const r of set.records as unknown as Record<string, unknown>[]) {
        if (set.form === 'messages') {
          const messages = r.messages as { role: unknown; content: unknown }[];
          assert.ok(
            messages.length > 0 &&
              messages.every((m) => ['system', 'user', 'assistant'].includes(m.role as string) && typeof m.content === 'string'),
          );
        } else {
          const fields: string[] = {
            text: ['text'],
            'prompt-completion': ['prompt', 'completion'],
            preference: ['prompt', 'chosen', 'rejected'],
          }[set.form as 'text'];
          assert.deepEqual(Object.keys(r).sort(), [...fields].sort());
          assert.ok(fields.every((f) => typeof r[f] === 'string'));
        }
      }
    },
    { watch: [dir] },
  );
});

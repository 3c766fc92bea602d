import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseJsonl, readJsonl } from '../../src/data/jsonl';
import { DataError } from '../../src/data/errors';

function errorOf(content: string): string {
  try {
    parseJsonl(content, 'data.jsonl');
  } catch (err) {
    assert.ok(err instanceof DataError);
    return err.message;
  }
  assert.fail('expected a DataError');
}

test('detects each TRL form and skips blank lines', () => {
  const text = parseJsonl('{"text":"a"}\n\n{"text":"b"}\n', 'f');
  assert.equal(text.form, 'text');
  assert.deepEqual(text.records, [{ text: 'a' }, { text: 'b' }]);
  assert.equal(parseJsonl('{"prompt":"p","completion":"c"}', 'f').form, 'prompt-completion');
  assert.equal(parseJsonl('{"prompt":"","chosen":"c","rejected":"r"}', 'f').form, 'preference');
  const chat = parseJsonl('{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}', 'f');
  assert.equal(chat.form, 'messages');
  assert.deepEqual(chat.records[0], {
    messages: [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'yo' },
    ],
  });
});

test('keeps only the fields of the form', () => {
  const set = parseJsonl('{"prompt":"p","completion":"c","id":7}', 'f');
  assert.deepEqual(set.records, [{ prompt: 'p', completion: 'c' }]);
});

test('invalid JSON names file and line', () => {
  assert.match(errorOf('{"text":"a"}\n\n{"text":'), /^data\.jsonl:3: invalid JSON/);
});

test('missing and non-string fields', () => {
  assert.equal(errorOf('{"prompt":"p","completion":"c"}\n{"prompt":"p"}'), 'data.jsonl:2: missing field "completion"');
  assert.equal(errorOf('{"text":5}'), 'data.jsonl:1: field "text" must be a string, got number');
  assert.match(errorOf('{"foo":"x"}'), /^data\.jsonl:1: record has none of the known field sets/);
  assert.equal(errorOf('[1]'), 'data.jsonl:1: expected a JSON object');
});

test('wrong role and malformed messages', () => {
  assert.equal(
    errorOf('{"messages":[{"role":"user","content":"a"},{"role":"bot","content":"b"}]}'),
    'data.jsonl:1: field "messages[1].role" must be one of system, user, assistant, got "bot"',
  );
  assert.equal(errorOf('{"messages":[{"role":"user"}]}'), 'data.jsonl:1: missing field "messages[0].content"');
  assert.equal(errorOf('{"messages":[]}'), 'data.jsonl:1: field "messages" must be a non-empty array, got an empty array');
});

test('mixed forms are refused', () => {
  assert.equal(
    errorOf('{"text":"a"}\n{"prompt":"p","completion":"c"}'),
    'data.jsonl:2: mixed forms: this record is prompt-completion but the file is text (from line 1)',
  );
});

test('empty file', () => {
  assert.equal(errorOf('\n  \n'), 'data.jsonl:1: empty file: no JSON records');
});

test('readJsonl reads from disk and reports the path', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jsonl-'));
  const file = path.join(dir, 'x.jsonl');
  fs.writeFileSync(file, '{"text":"a"}\r\n{"text":1}\r\n');
  assert.throws(() => readJsonl(file), { message: `${file}:2: field "text" must be a string, got number` });
  fs.writeFileSync(file, '{"text":"a"}\r\n');
  assert.deepEqual(readJsonl(file), { form: 'text', records: [{ text: 'a' }], file });
});

test('reads a real stories-style file of each form', () => {
  const dir = '/work/shared/datasets/stories-style';
  if (!fs.existsSync(dir)) return;
  assert.equal(readJsonl(path.join(dir, 'moral.val.jsonl')).records.length, 200);
  assert.equal(readJsonl(path.join(dir, 'moral.pc.val.jsonl')).form, 'prompt-completion');
  assert.equal(readJsonl(path.join(dir, 'moral.dpo.val.jsonl')).form, 'preference');
});

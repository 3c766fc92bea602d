// Reads a TRL-style JSONL training file. The form is taken from the first
// record and every other record must have the same form, so a stray line from
// another dataset is reported instead of silently training on the wrong thing.

import * as fs from 'fs';
import type { ChatMessage } from '../model/types';
import { excerpt, parseJson } from '../util/json';
import { DataError } from './errors';
import type { RecordForm, RecordSet } from './records';

const ROLES: ReadonlySet<string> = new Set(['system', 'user', 'assistant']);

/** Fields that identify each form, most specific first (preference also has `prompt`). */
const FORM_FIELDS: ReadonlyArray<[RecordForm, string[]]> = [
  ['preference', ['prompt', 'chosen', 'rejected']],
  ['prompt-completion', ['prompt', 'completion']],
  ['messages', ['messages']],
  ['text', ['text']],
];

const FORM_NAMES = FORM_FIELDS.map(([, fields]) => `{${fields.join(', ')}}`).join(', ');

export function readJsonl(file: string): RecordSet {
  return parseJsonl(fs.readFileSync(file, 'utf8'), file);
}

/** Parses JSONL text; `file` is only used in error messages. */
export function parseJsonl(content: string, file: string): RecordSet {
  const lines = content.split(/\r?\n/);
  let form: RecordForm | null = null;
  let formLine = 0;
  const records: unknown[] = [];
  lines.forEach((raw, index) => {
    if (raw.trim() === '') return;
    const line = index + 1;
    const obj = parseObject(raw, file, line);
    if (form === null) {
      form = detectForm(obj);
      formLine = line;
      if (form === null) {
        throw new DataError(file, line, `record has none of the known field sets ${FORM_NAMES}`);
      }
    }
    records.push(toRecord(obj, form, formLine, file, line));
  });
  if (form === null) throw new DataError(file, 1, 'empty file: no JSON records');
  return { form, records, file } as RecordSet;
}

function parseObject(raw: string, file: string, line: number): Record<string, unknown> {
  let value: unknown;
  try {
    value = parseJson(raw);
  } catch (err) {
    throw new DataError(file, line, `invalid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new DataError(file, line, 'expected a JSON object');
  }
  return value as Record<string, unknown>;
}

function detectForm(obj: Record<string, unknown>): RecordForm | null {
  for (const [form, fields] of FORM_FIELDS) {
    if (fields.every((f) => f in obj)) return form;
  }
  return null;
}

function toRecord(obj: Record<string, unknown>, form: RecordForm, formLine: number, file: string, line: number): unknown {
  const own = detectForm(obj);
  if (own !== null && own !== form) {
    throw new DataError(file, line, `mixed forms: this record is ${own} but the file is ${form} (from line ${formLine})`);
  }
  if (form === 'messages') return { messages: readMessages(obj.messages, file, line) };
  const fields = FORM_FIELDS.find(([f]) => f === form)![1];
  const record: Record<string, string> = {};
  for (const field of fields) record[field] = readString(obj, field, file, line);
  return record;
}

function readString(obj: object, field: string, file: string, line: number, where = ''): string {
  const name = where ? `${where}.${field}` : field;
  if (!(field in obj)) throw new DataError(file, line, `missing field "${name}"`);
  const value = (obj as Record<string, unknown>)[field];
  if (typeof value !== 'string') {
    throw new DataError(file, line, `field "${name}" must be a string, got ${describe(value)}`);
  }
  return value;
}

function readMessages(value: unknown, file: string, line: number): ChatMessage[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new DataError(file, line, `field "messages" must be a non-empty array, got ${describe(value)}`);
  }
  return value.map((m, i) => {
    const where = `messages[${i}]`;
    if (typeof m !== 'object' || m === null || Array.isArray(m)) {
      throw new DataError(file, line, `${where} must be an object, got ${describe(m)}`);
    }
    const role = readString(m, 'role', file, line, where);
    if (!ROLES.has(role)) {
      throw new DataError(file, line, `field "${where}.role" must be one of system, user, assistant, got ${excerpt(role)}`);
    }
    const content = readString(m, 'content', file, line, where);
    return { role: role as ChatMessage['role'], content };
  });
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return value.length === 0 ? 'an empty array' : 'an array';
  return typeof value;
}

// Fuzz: every message a webview can send (the chat panel's and the training view's), through
// the extension's validator and the schemas it validates against (extension/webviewMessages.ts).

import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import * as fc from 'fast-check';
import { CHAT_FROM_WEBVIEW, TRAIN_FROM_WEBVIEW, validate } from '../../src/extension/webviewMessages';
import { fuzz } from './fuzz';

const CHAT = CHAT_FROM_WEBVIEW;
const TRAIN = TRAIN_FROM_WEBVIEW;

type Schema = Record<string, Record<string, string>>;
const KEYS = ['type', 'text', 'compare', 'constructor', '__proto__', 'toString', 'hasOwnProperty', 'x'];

function messages(schemas: Schema): fc.Arbitrary<unknown> {
  const field = fc.oneof(
    fc.string({ maxLength: 10 }),
    fc.boolean(),
    fc.double(),
    fc.constant(undefined),
    fc.constant(null),
    fc.jsonValue({ maxDepth: 2 }),
    fc.constant('x'.repeat(200_001)),
  );
  const types = fc.oneof(
    { weight: 5, arbitrary: fc.constantFrom(...Object.keys(schemas)) },
    { weight: 1, arbitrary: fc.constantFrom('constructor', '__proto__', 'toString', '') },
    { weight: 1, arbitrary: fc.anything() },
  );
  return fc.oneof(
    {
      weight: 6,
      arbitrary: fc
        .record({
          type: types,
          fields: fc.dictionary(fc.constantFrom(...KEYS, ...Object.values(schemas).flatMap((f) => Object.keys(f))), field, { maxKeys: 4 }),
        })
        .map(({ type, fields }) => Object.assign(Object.create(null), fields, { type })),
    },
    { weight: 1, arbitrary: fc.anything() },
  );
}

/** A message the schema allows: its type is a schema's own key, with exactly its fields, typed. */
function allowed(msg: Record<string, unknown>, schemas: Schema): boolean {
  const schema = Object.hasOwn(schemas, msg.type as string) ? schemas[msg.type as string] : null;
  if (!schema) return false;
  for (const key of Object.keys(msg)) if (key !== 'type' && !Object.hasOwn(schema, key)) return false;
  return Object.entries(schema).every(([key, spec]) => {
    const v = msg[key];
    const kind = spec.replace('?', '');
    if (v === undefined) return spec.endsWith('?');
    return typeof v === kind && !(kind === 'string' && (v as string).length > 200_000) && !(kind === 'number' && !Number.isFinite(v));
  });
}

for (const [name, schemas] of [
  ['chat panel', CHAT],
  ['training view', TRAIN],
] as const) {
  test(`fuzz: ${name} webview messages (validate)`, async (t) => {
    await fuzz(t, `webview messages (${name})`, messages(schemas as Schema), (msg) => {
      const out = validate(msg, schemas) as Record<string, unknown> | null;
      if (out === null) return;
      assert.ok(allowed(out, schemas as Schema), `accepted ${JSON.stringify(out).slice(0, 200)}`);
    });
  });
}

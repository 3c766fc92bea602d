// Fuzz: the JSON files of a model folder (config.json through parseConfig, tokenizer.json and
// tokenizer_config.json through HfTokenizer, from parsed objects and from files) and chat
// templates (compiled and rendered with generated messages).

import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import * as fc from 'fast-check';
import { parseConfig } from '../../src/model/config';
import { ModelLoadError } from '../../src/model/errors';
import { HfTokenizer } from '../../src/model/tokenizer';
import type { ChatMessage } from '../../src/model/types';
import { STORIES, tempDir } from '../model/paths';
import { fuzz, mutated, mutatedJson, typedOrResult } from './fuzz';

const read = (name: string) => JSON.parse(fs.readFileSync(path.join(STORIES, name), 'utf8')) as Record<string, unknown>;
const CONFIG = read('config.json');
const TOKENIZER = read('tokenizer.json');
const TOKENIZER_CONFIG = read('tokenizer_config.json');

const NUMBERS = fc.oneof(
  fc.integer({ min: -3, max: 100_000 }),
  fc.constantFrom(0, 1, 2, 0.5, 1e308, -0, Number.MAX_SAFE_INTEGER + 2),
  fc.double(),
);
/** config.json fields set to edge values, plus whole-tree mutations. */
const configArb = fc.oneof(
  fc
    .record({
      field: fc.constantFrom(...Object.keys(CONFIG), 'head_dim', 'rope_scaling', 'num_key_value_heads', 'architectures'),
      value: fc.oneof(NUMBERS, fc.jsonValue({ maxDepth: 2 })),
    })
    .map(({ field, value }) => ({ ...CONFIG, [field]: value })),
  mutatedJson(CONFIG),
  fc.jsonValue({ maxDepth: 3 }),
);

test('fuzz: config.json (parseConfig)', async (t) => {
  await fuzz(t, 'config.json', configArb, (json) => {
    const c = typedOrResult(() => parseConfig(json, 'config.json'), [ModelLoadError]);
    if (!c) return;
    for (const k of [
      'hiddenSize',
      'intermediateSize',
      'numLayers',
      'numHeads',
      'numKvHeads',
      'headDim',
      'vocabSize',
      'maxPositions',
    ] as const) {
      assert.ok(Number.isSafeInteger(c[k]) && c[k] > 0, `${k} = ${c[k]}`);
    }
    assert.equal(c.numHeads % c.numKvHeads, 0);
    assert.ok(c.rmsNormEps > 0 && c.ropeTheta > 0 && Number.isFinite(c.ropeTheta));
  });
});

test('fuzz: tokenizer.json and tokenizer_config.json (HfTokenizer, objects and files)', async (t) => {
  const dir = tempDir();
  const reference = new HfTokenizer(TOKENIZER, TOKENIZER_CONFIG, 'tokenizer.json');
  const arb = fc.record({
    tokenizer: fc.oneof({ weight: 3, arbitrary: mutatedJson(TOKENIZER) }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) }),
    config: fc.oneof(mutatedJson(TOKENIZER_CONFIG), fc.constant(TOKENIZER_CONFIG)),
    asFile: fc.option(mutated(fc.constant(Buffer.from(JSON.stringify(TOKENIZER))))),
    text: fc.string({ maxLength: 40 }),
  });
  let n = 0;
  await fuzz(
    t,
    'tokenizer.json',
    arb,
    ({ tokenizer, config, asFile, text }) => {
      let tok: HfTokenizer | null;
      if (asFile) {
        const folder = path.join(dir, `t${n++}`);
        fs.mkdirSync(folder);
        fs.writeFileSync(path.join(folder, 'tokenizer.json'), asFile.bytes);
        tok = typedOrResult(() => HfTokenizer.fromFolder(folder), [ModelLoadError]);
        fs.rmSync(folder, { recursive: true });
        if (asFile.intact) assert.ok(tok, 'the intact tokenizer.json was refused');
      } else {
        tok = typedOrResult(
          () => new HfTokenizer(tokenizer as Record<string, unknown>, config as Record<string, unknown>, 'tokenizer.json'),
          [ModelLoadError],
        );
      }
      if (!tok) return;
      // A tokenizer that builds must encode and decode any text (typed errors are no excuse here).
      const ids = tok.encode(text);
      assert.ok(ids.every((id) => Number.isInteger(id) && id >= 0));
      assert.equal(typeof tok.decode(ids), 'string');
      if (asFile?.intact) assert.deepEqual(ids, reference.encode(text));
    },
    { watch: [dir] },
  );
});

/** Jinja fragments that templates in the wild use, with small loop bounds. */
const FRAGMENTS = [
  '{% for message in messages %}',
  '{% endfor %}',
  '{% if message.role == "user" %}',
  '{% elif loop.first %}',
  '{% else %}',
  '{% endif %}',
  '{{ message.content }}',
  '{{ message["role"] | upper }}',
  '{{ bos_token }}',
  '{{ eos_token }}',
  '{% if add_generation_prompt %}',
  '{{ messages[0].content | trim }}',
  "{{ raise_exception('Conversation roles must alternate') }}",
  '{% set x = messages | length %}',
  '{{ x * 2 }}',
  '{{ undefined_var.field }}',
  '{% for i in range(5) %}{{ i }}{% endfor %}',
  '{{ (messages | selectattr("role", "equalto", "system") | list) | length }}',
  '{{',
  '}}',
  '{%',
  '%}',
  '{# c #}',
  '{{ 1 / 0 }}',
  '{{ "a" + 1 }}',
  '{{ message.content[::-1] }}',
  '{{ messages | tojson }}',
  '{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1) }}',
  '{{ loop.index }}',
  'plain text ',
  '\n',
];

const MESSAGES = fc.array(fc.record({ role: fc.constantFrom('system', 'user', 'assistant'), content: fc.string({ maxLength: 30 }) }), {
  maxLength: 5,
});

test('fuzz: chat templates (compile and render)', async (t) => {
  const arb = fc.record({
    template: fc.oneof(
      fc.array(fc.oneof(fc.constantFrom(...FRAGMENTS), fc.string({ maxLength: 8 })), { maxLength: 12 }).map((parts) => parts.join('')),
      fc.jsonValue({ maxDepth: 1 }),
    ),
    messages: MESSAGES,
    addGenerationPrompt: fc.boolean(),
  });
  await fuzz(t, 'chat templates', arb, ({ template, messages, addGenerationPrompt }) => {
    const tok = typedOrResult(
      () => new HfTokenizer(TOKENIZER, { ...TOKENIZER_CONFIG, chat_template: template }, 'tokenizer.json', 'tokenizer_config.json'),
      [ModelLoadError],
    );
    if (!tok) return;
    const text = typedOrResult(() => tok.applyChatTemplate(messages as ChatMessage[], { addGenerationPrompt }), [ModelLoadError]);
    if (text !== null) assert.equal(typeof text, 'string');
  });
});

// The extension's settings (package.json) default to exactly the values the code
// uses when a setting is absent: one definition, src/generate/defaults.ts and
// src/train/defaults.ts, and a settings schema that cannot drift from it.

import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { GENERATION_DEFAULTS } from '../../src/generate/defaults';
import { TRAIN_DEFAULTS } from '../../src/train/defaults';

const PACKAGE = path.resolve(__dirname, '..', '..', '..', 'package.json');

test("package.json's setting defaults are the code's defaults", () => {
  const props = JSON.parse(fs.readFileSync(PACKAGE, 'utf8')).contributes.configuration.properties as Record<string, { default: unknown }>;
  const expected: Record<string, unknown> = {
    'aligner.generation.maxNewTokens': GENERATION_DEFAULTS.maxNewTokens,
    'aligner.generation.temperature': GENERATION_DEFAULTS.temperature,
    'aligner.generation.topP': GENERATION_DEFAULTS.topP,
    'aligner.training.tokens': TRAIN_DEFAULTS.tokens,
    'aligner.training.startLayer': TRAIN_DEFAULTS.startLayer,
    'aligner.training.epochs': TRAIN_DEFAULTS.epochs,
    'aligner.training.learningRate': TRAIN_DEFAULTS.lr.sft,
  };
  for (const [key, value] of Object.entries(expected)) assert.equal(props[key]?.default, value, key);
});

// The settings schema in package.json allows exactly the generation values the sampler accepts,
// so no setting a user can save makes every chat fail (issue 6, defect 10).

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Sampler } from '../../src/generate/sampler';

const PACKAGE = path.resolve(__dirname, '..', '..', '..', 'package.json');

interface NumberSchema {
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
}

/** The numeric bounds of a JSON schema (draft 7, as VS Code validates settings). */
function allows(s: NumberSchema, v: number): boolean {
  return !(
    (s.minimum !== undefined && v < s.minimum) ||
    (s.maximum !== undefined && v > s.maximum) ||
    (s.exclusiveMinimum !== undefined && v <= s.exclusiveMinimum) ||
    (s.exclusiveMaximum !== undefined && v >= s.exclusiveMaximum)
  );
}

function samplerAccepts(opts: { temperature: number; topP?: number }): boolean {
  try {
    new Sampler({ seed: 1, ...opts });
    return true;
  } catch {
    return false;
  }
}

test('defect 10: the schema of temperature and topP allows what the sampler accepts, and only that', () => {
  const props = JSON.parse(fs.readFileSync(PACKAGE, 'utf8')).contributes.configuration.properties as Record<
    string,
    NumberSchema & { default: number }
  >;
  const topP = props['aligner.generation.topP'];
  const temperature = props['aligner.generation.temperature'];
  for (const v of [-1, -1e-9, 0, 1e-9, 0.05, 0.9, 1, 1 + 1e-9, 2]) {
    assert.equal(allows(topP, v), samplerAccepts({ temperature: 0.7, topP: v }), `topP = ${v}`);
    assert.equal(allows(temperature, v), samplerAccepts({ temperature: v }), `temperature = ${v}`);
  }
  assert.ok(samplerAccepts({ temperature: temperature.default, topP: topP.default }));
});

// Issue 10 item 1: one rule decides adapter compatibility. For a set of files that differ in one
// field each, the adapter list's answer, reading + fit check, and the engine's feed check agree.

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readAdapter } from '../../src/adapter/file';
import { checkAdapterFits } from '../../src/adapter/fit';
import { checkAdapter } from '../../src/engine/feeds';
import { loadModel } from '../../src/model/load';
import type { BaseModel } from '../../src/model/types';
import { adapterInfo } from '../../src/worker/adapters';
import { STORIES, tempDir } from '../model/paths';
import { adapterMeta, rawSafetensors } from './raw';

let model: BaseModel;
test.before(async () => {
  model = await loadModel(STORIES);
});

/** stories260K: d = 64, 5 layers, 8 heads. Each case changes one thing of a fitting 2-token adapter. */
function cases(fingerprint: string) {
  const ok = { tokens: 2, d: 64, gates: [3, 8], meta: adapterMeta(fingerprint, 2, 2) };
  const { format: _, ...noFormat } = ok.meta;
  return {
    fits: ok,
    'no format field': { ...ok, meta: noFormat },
    'another format': { ...ok, meta: { ...ok.meta, format: 'peft/1' } },
    'another base model': { ...ok, meta: { ...ok.meta, base_fingerprint: 'other' } },
    'too wide a prefix': { ...ok, d: 32 },
    'gates [6, 4] instead of [3, 8]': { ...ok, gates: [6, 4] },
    'start layer beyond the model': { ...ok, gates: [1, 8], meta: { ...ok.meta, start_layer: '5' } },
    'start layer 3 with 3 gate rows': { ...ok, meta: { ...ok.meta, start_layer: '3' } },
    'fits from start layer 4': { ...ok, gates: [1, 8], meta: { ...ok.meta, start_layer: '4' } },
    '65 tokens': { ...ok, tokens: 65, meta: { ...ok.meta, tokens: '65' } },
  };
}

test('the adapter list, loading and the engine decide compatibility by one rule', () => {
  const dir = tempDir();
  const seen: Record<string, boolean> = {};
  for (const [name, c] of Object.entries(cases(model.fingerprint))) {
    const file = path.join(dir, `${name}.safetensors`);
    const prefix = new Float32Array(c.tokens * c.d).fill(0.5);
    const gates = new Float32Array(c.gates[0] * c.gates[1]).fill(0.25);
    fs.writeFileSync(
      file,
      rawSafetensors(
        [
          { name: 'prefix', shape: [c.tokens, c.d], values: prefix },
          { name: 'gates', shape: c.gates, values: gates },
        ],
        c.meta,
      ),
    );

    let listed: boolean;
    try {
      listed = adapterInfo(file, model).compatible;
    } catch {
      listed = false; // listAdapters shows such a file with its error, never as compatible
    }
    let loads = true;
    try {
      const a = readAdapter(file);
      checkAdapterFits(a, model, file);
      checkAdapter(model.config, a);
    } catch {
      loads = false;
    }
    assert.equal(listed, loads, `${name}: the list says ${listed ? '' : 'not '}compatible, loading ${loads ? 'succeeds' : 'fails'}`);
    seen[name] = loads;
  }
  assert.deepEqual(
    Object.entries(seen)
      .filter(([, v]) => v)
      .map(([k]) => k),
    ['fits', 'fits from start layer 4'],
  );
});

test('the engine refuses weights by the same rule, with the same words', () => {
  const weights = { prefix: new Float32Array(2 * 64), gates: new Float32Array(3 * 8), tokens: 2, startLayer: 2 };
  assert.doesNotThrow(() => checkAdapter(model.config, weights));
  assert.throws(
    () => checkAdapter(model.config, { ...weights, gates: new Float32Array(16) }),
    /tensor "gates" has shape \[2,8\], expected \[3, 8\]/,
  );
  assert.throws(() => checkAdapter(model.config, { ...weights, startLayer: 5 }), /start layer 5 is beyond the model's 5 layers/);
  assert.throws(
    () => checkAdapter(model.config, { ...weights, tokens: 65, prefix: new Float32Array(65 * 64) }),
    /65 prefix tokens; an adapter has 1 to 64/,
  );
});

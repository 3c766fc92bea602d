#!/usr/bin/env node
// `npm run oracle -- DIR`: checks every oracle vector file in DIR against the
// engine and exits non-zero on any failure or unknown case.

import * as fs from 'fs';
import * as path from 'path';
import { Engine, Recompute, RECOMPUTE_MODES } from '../engine/engine';
import { checkOracleFile, FileResult } from './oracleCheck';
import { DEVICES, isDevice } from '../engine/types';
import { importLlama2c } from '../model/llama2c';

async function main(
  dir: string | undefined,
  device: string | undefined,
  recompute: string | undefined,
  logitChunk: string | undefined,
): Promise<number> {
  if (!dir) {
    console.error('usage: npm run oracle -- DIR [--device cpu|webgpu|cuda] [--recompute on|off|auto] [--logit-chunk N]');
    return 2;
  }
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort();
  if (files.length === 0) {
    console.error(`${dir}: no oracle vector files (*.json)`);
    return 1;
  }
  // The cases run on the llama2.c checkpoint their files name, relative to the oracle folder's grandparent.
  const first = JSON.parse(fs.readFileSync(path.join(dir, files[0]), 'utf8'));
  const root = path.resolve(dir, '..', '..');
  const checkpoint = path.join(root, first.model.checkpoint);
  const model = await importLlama2c(checkpoint, path.join(root, first.model.tokenizer));
  const wanted = device ?? 'cpu';
  if (!isDevice(wanted)) {
    console.error(`oracle: --device: expected ${DEVICES.join(', ')}, got "${wanted}"`);
    return 2;
  }
  if (recompute !== undefined && !RECOMPUTE_MODES.includes(recompute as Recompute)) {
    console.error(`oracle: --recompute: expected ${RECOMPUTE_MODES.join(', ')}, got "${recompute}"`);
    return 2;
  }
  const chunk = logitChunk === undefined ? undefined : Number(logitChunk);
  const engine = await Engine.create(model, { device: wanted, recompute: recompute as Recompute | undefined, logitChunk: chunk });
  const chunkNote = chunk === undefined ? '' : `, logit chunk ${chunk}`;
  console.log(`oracle: ${files.length} files, model ${checkpoint}, device ${engine.device}, recompute ${recompute ?? 'auto'}${chunkNote}`);
  let failed = 0;
  for (const f of files) {
    const r = await checkOracleFile(engine, path.join(dir, f));
    report(r);
    if (!r.ok) failed++;
  }
  await engine.dispose();
  console.log(`${files.length - failed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

function report(r: FileResult): void {
  console.log(`${r.ok ? 'PASS' : 'FAIL'} ${r.file} (${r.case})${r.error ? `: ${r.error}` : ''}`);
  for (const f of r.fields) {
    const err = `max abs ${f.maxAbs.toExponential(2)}, max rel ${f.maxRel.toExponential(2)}`;
    console.log(`  ${f.ok ? 'ok  ' : 'FAIL'} ${f.field}: ${f.detail ?? err}`);
  }
}

const args = process.argv.slice(2);
/** The value of `--flag VALUE`, taken out of args. */
const flag = (name: string) => {
  const at = args.indexOf(name);
  return at >= 0 ? args.splice(at, 2)[1] : undefined;
};
const device = flag('--device');
const recompute = flag('--recompute');
const logitChunk = flag('--logit-chunk');
main(args[0], device, recompute, logitChunk).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`oracle: ${(err as Error).message}`);
    process.exit(1);
  },
);

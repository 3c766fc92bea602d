// Imports point down the layers of CONTRIBUTING.md, never up or sideways:
//
//   kernels/ < src/util < src/model < src/adapter, src/data < src/engine
//     < src/train, src/generate < src/protocol.ts, src/server < src/worker, src/cli, src/extension
//
// A folder may import itself and any lower rank; folders of the same rank do not
// import each other (the worker, the CLI and the extension are separate
// programs, and the extension talks to the worker only through protocol.ts).
// Every file under kernels/ and src/ must belong to a layer.
// A few packages belong to one layer: onnxruntime to the engine, VS Code's API
// to the extension, and kernels/ uses nothing but ONNX.

import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import * as ts from 'typescript';

const ROOT = path.resolve(__dirname, '..', '..');

const RANKS: ReadonlyArray<readonly [layer: string, rank: number]> = [
  ['kernels', 0],
  ['src/util', 1],
  ['src/model', 2],
  ['src/adapter', 3],
  ['src/data', 3],
  ['src/engine', 4],
  ['src/train', 5],
  ['src/generate', 5],
  ['src/protocol.ts', 6],
  ['src/server', 6],
  ['src/worker', 7],
  ['src/cli', 7],
  ['src/extension', 7],
];

/** Packages only one layer may import (the first path segment of the specifier decides). */
const PACKAGE_OWNERS: Record<string, string> = {
  'onnxruntime-node': 'src/engine',
  vscode: 'src/extension',
  'vscode-languageclient': 'src/extension',
  'vscode-languageserver': 'src/worker',
};
const KERNEL_PACKAGES = new Set(['onnx-proto']);

/** The layer a repository-relative path belongs to, or null outside kernels/ and src/. */
function layerOf(file: string): { layer: string; rank: number } | null {
  for (const [layer, rank] of RANKS) {
    if (file === layer || file.startsWith(`${layer}/`) || file === `${layer}.ts`) return { layer, rank };
  }
  return null;
}

/** Every import of `files` (repository-relative path → source text) that breaks the layering, one line each. */
export function layerViolations(files: ReadonlyMap<string, string>): string[] {
  const out: string[] = [];
  for (const [file, source] of files) {
    const from = layerOf(file);
    if (!from) {
      out.push(`${file} is in no layer: give its folder a rank in test/layers.test.ts and CONTRIBUTING.md`);
      continue;
    }
    for (const { fileName: spec } of ts.preProcessFile(source, true, true).importedFiles) {
      if (spec.startsWith('.')) {
        const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec));
        const to = layerOf(target);
        if (!to || to.layer === from.layer) continue;
        if (to.rank >= from.rank)
          out.push(`${file} imports ${spec}: ${from.layer} (rank ${from.rank}) may not import ${to.layer} (rank ${to.rank})`);
        continue;
      }
      const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
      const owner = PACKAGE_OWNERS[pkg];
      if (owner && owner !== from.layer) out.push(`${file} imports ${spec}, which only ${owner} may use`);
      if (from.layer === 'kernels' && !KERNEL_PACKAGES.has(pkg))
        out.push(`${file} imports ${spec}: kernels/ uses nothing but ${[...KERNEL_PACKAGES]}`);
    }
  }
  return out;
}

function sources(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const entry of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts') || entry.name.endsWith('.d.ts')) continue;
    const abs = path.join(entry.parentPath, entry.name);
    out.set(path.relative(ROOT, abs).split(path.sep).join('/'), fs.readFileSync(abs, 'utf8'));
  }
  return out;
}

test('every import in kernels/ and src/ points down a layer', () => {
  const files = new Map([...sources('kernels'), ...sources('src')]);
  assert.ok(files.size > 50, `found only ${files.size} source files under ${ROOT}`);
  assert.deepEqual(layerViolations(files), []);
});

test('upward, sideways and misplaced-package imports are reported', () => {
  const files = new Map([
    ['kernels/llama.ts', "import type { ModelConfig } from '../src/model/types';\nimport * as fs from 'fs';"],
    ['src/engine/oracle.ts', "import { AdamW } from '../train/adamw';\nimport { Rng } from '../util/random';"],
    ['src/extension/train.ts', "import { isValidAdapterName } from '../worker/adapters';\nimport * as vscode from 'vscode';"],
    ['src/protocol.ts', "export type { Device } from './engine/types';"],
    ['src/data/batches.ts', "const a = require('../adapter/new'); import('onnxruntime-node');"],
    ['src/plugins/x.ts', ''],
  ]);
  assert.deepEqual(layerViolations(files), [
    'kernels/llama.ts imports ../src/model/types: kernels (rank 0) may not import src/model (rank 2)',
    'kernels/llama.ts imports fs: kernels/ uses nothing but onnx-proto',
    'src/engine/oracle.ts imports ../train/adamw: src/engine (rank 4) may not import src/train (rank 5)',
    'src/extension/train.ts imports ../worker/adapters: src/extension (rank 7) may not import src/worker (rank 7)',
    'src/data/batches.ts imports ../adapter/new: src/data (rank 3) may not import src/adapter (rank 3)',
    'src/data/batches.ts imports onnxruntime-node, which only src/engine may use',
    'src/plugins/x.ts is in no layer: give its folder a rank in test/layers.test.ts and CONTRIBUTING.md',
  ]);
});

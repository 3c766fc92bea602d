// One entry point for "the model the user named": a Hugging Face folder, a GGUF
// file (by its magic, so Ollama's extension-less blobs count), a llama2.c
// checkpoint file (with its tokenizer .bin beside it or named), or a name that
// src/model/sources.ts resolves: `ollama:NAME[:TAG]` or an HF cache id `org/name`.

import * as fs from 'fs';
import * as path from 'path';
import { ModelLoadError } from './errors';
import { importGguf, isGgufFile } from './gguf';
import { importLlama2c } from './llama2c';
import { loadModel } from './load';
import { resolveModel, type SourceOptions } from './sources';
import type { BaseModel } from './types';

export async function openModel(spec: string, tokenizer?: string, sources?: SourceOptions): Promise<BaseModel> {
  const { location, name } = resolveModel(spec, sources);
  if (fs.statSync(location).isDirectory()) return loadModel(location);
  // Ollama blobs are named by their hash: the model name is the one the user gave.
  if (isGgufFile(location)) return importGguf(location, spec.startsWith('ollama:') ? name : undefined);
  const tok = tokenizer ?? siblingTokenizer(location);
  return importLlama2c(location, tok);
}

function siblingTokenizer(checkpoint: string): string {
  const dir = path.dirname(checkpoint);
  const found = fs.readdirSync(dir).filter((f) => /^tok.*\.bin$/.test(f));
  if (found.length !== 1) {
    throw new ModelLoadError(
      `${checkpoint}: a llama2.c checkpoint needs its tokenizer .bin (pass --tokenizer FILE; found ${found.length} candidates beside it)`,
    );
  }
  return path.join(dir, found[0]);
}

import * as fs from 'fs';
import * as path from 'path';
import { parseConfig } from './config';
import { ModelLoadError } from './errors';
import { legacyFingerprint, modelFingerprint } from './fingerprint';
import { readSafetensorsFolder } from './safetensors';
import { HfTokenizer, readJson } from './tokenizer';
import type { BaseModel, GenerationDefaults } from './types';
import { checkWeights, FileWeightStore } from './weights';
import { excerpt } from '../util/json';

/** Loads a Hugging Face model folder (SPEC §3), checking every weight the config implies. */
export async function loadModel(dir: string): Promise<BaseModel> {
  const source = path.resolve(dir);
  if (!fs.existsSync(source) || !fs.statSync(source).isDirectory()) {
    throw new ModelLoadError(`${source}: model folder not found`);
  }
  const configFile = path.join(source, 'config.json');
  const configJson = readJson(configFile);
  const config = parseConfig(configJson, configFile);
  const weights = new FileWeightStore(readSafetensorsFolder(source).tensors);
  checkWeights(weights, config, source);
  const tokenizer = HfTokenizer.fromFolder(source);
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new ModelLoadError(
      `${path.join(source, 'tokenizer.json')}: the tokenizer has ${tokenizer.vocabSize} tokens but config.json's vocab_size is ${config.vocabSize}`,
    );
  }
  return {
    name: path.basename(source),
    source,
    config,
    weights,
    tokenizer,
    generation: readGenerationDefaults(source, configJson),
    fingerprint: modelFingerprint(config, weights, tokenizer.vocabulary()),
    legacyFingerprint: legacyFingerprint(config, weights.ref('model.embed_tokens.weight')),
  };
}

/** generation_config.json when present; otherwise the bos/eos ids of config.json. */
function readGenerationDefaults(dir: string, configJson: Record<string, unknown>): GenerationDefaults {
  const file = path.join(dir, 'generation_config.json');
  const hasFile = fs.existsSync(file);
  const g = hasFile ? readJson(file) : configJson;
  const label = hasFile ? file : path.join(dir, 'config.json');
  const defaults: GenerationDefaults = {
    bosTokenId: g.bos_token_id == null ? null : tokenId(g.bos_token_id, 'bos_token_id', label),
    eosTokenIds: eosIds(g.eos_token_id, label),
  };
  const numbers: [keyof GenerationDefaults, string][] = [
    ['temperature', 'temperature'],
    ['topP', 'top_p'],
    ['topK', 'top_k'],
    ['repetitionPenalty', 'repetition_penalty'],
    ['maxNewTokens', 'max_new_tokens'],
  ];
  for (const [key, field] of numbers) {
    const v = g[field];
    if (v == null) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw new ModelLoadError(`${label}: field "${field}" must be a non-negative number, found ${excerpt(v)}`);
    }
    (defaults as unknown as Record<string, number>)[key] = v;
  }
  return defaults;
}

function eosIds(value: unknown, label: string): number[] {
  if (value == null) return [];
  const list = Array.isArray(value) ? value : [value];
  return list.map((v) => tokenId(v, 'eos_token_id', label));
}

function tokenId(value: unknown, field: string, label: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new ModelLoadError(`${label}: field "${field}" must be a token id, found ${excerpt(value)}`);
  }
  return value;
}

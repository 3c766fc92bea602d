// stories260K variants for engine tests: the same weights under another
// config (family, rotary scaling) and with extra tensors (q/k/v biases).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel } from '../../src/model/load';
import { writeSafetensors, type F32Tensor } from '../../src/model/safetensors';
import { Rng } from '../../src/util/random';
import { copyOfStories, STORIES } from '../model/paths';

/** A copy of stories260K with config changes and extra tensors. */
export async function variant(configPatch: Record<string, unknown>, extra: (names: string[]) => F32Tensor[] = () => []) {
  const dir = copyOfStories();
  const base = await loadModel(STORIES);
  const names = [...base.weights.tensors.keys()];
  const tensors: F32Tensor[] = names.map((name) => ({
    name,
    dtype: 'F32',
    shape: base.weights.tensors.get(name)!.shape,
    data: base.weights.f32(name),
  }));
  writeSafetensors(path.join(dir, 'model.safetensors'), [...tensors, ...extra(names)], { format: 'pt' });
  const configFile = path.join(dir, 'config.json');
  fs.writeFileSync(configFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(configFile, 'utf8')), ...configPatch }));
  return loadModel(dir);
}

export function qkvBiases(scale: number) {
  const rng = new Rng(3);
  return (names: string[]) =>
    names
      .filter((n) => /self_attn\.[qkv]_proj\.weight$/.test(n))
      .map((n) => {
        const rows = n.includes('q_proj') ? 64 : 32;
        return {
          name: n.replace('.weight', '.bias'),
          dtype: 'F32' as const,
          shape: [rows],
          data: Float32Array.from({ length: rows }, () => scale * rng.normal()),
        };
      });
}

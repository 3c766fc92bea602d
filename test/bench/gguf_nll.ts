// `npm run -s bench:gguf`: the mean per-token NLL of the stories-style validation texts
// (test/model/validation.ts: the token ids test/engine/gguf.test.ts scores) on stories260K
// written as GGUF F32, F16, Q8_0, Q4_0 and Q4_1 (test/model/gguf_writer.ts, as convert_hf_to_gguf
// and llama-quantize write them), computed three ways on each file: by our engine on the file's
// blocks as stored, by our engine on the blocks decoded to float32 (ggml's reference decoding),
// and by llama.cpp itself (node-llama-cpp's prebuilt CPU build, the softmax of its logits at
// every position). Beside them our own q8/q4 of the Hugging Face folder. One JSON line per row.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Engine } from '../../src/engine/engine';
import type { Quantization } from '../../src/engine/quantize';
import { importGguf } from '../../src/model/gguf';
import { loadModel } from '../../src/model/load';
import type { BaseModel } from '../../src/model/types';
import { writeStoriesGguf, type StoriesType } from '../model/gguf_writer';
import { STORIES, tempDir } from '../model/paths';
import { meanNll, validationIds } from '../model/validation';
import { cpuLlama } from './llamacpp';

const TYPES: StoriesType[] = ['F32', 'F16', 'Q8_0', 'Q4_0', 'Q4_1'];

type Llama = Awaited<ReturnType<typeof cpuLlama>>;

/** llama.cpp's mean NLL of `texts` on `file`: each text from an empty context, every position's full softmax. */
async function llamaCppNll(llama: Llama, file: string, texts: number[][]): Promise<number> {
  const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
  const context = await model.createContext({ contextSize: 512, batchSize: 512, threads: 1 });
  const seq = context.getSequence();
  let total = 0;
  let count = 0;
  try {
    for (const ids of texts) {
      await seq.clearHistory();
      // Temperature 0 (the default) samples greedily with no top-k, so the probabilities are the softmax over the whole vocabulary.
      const input = ids.map((id, t) => (t < ids.length - 1 ? ([id, { generateNext: { probabilities: true } }] as const) : id));
      const out = await seq.controlledEvaluate(input as never);
      for (let t = 0; t < ids.length - 1; t++) {
        const p = out[t]?.next.probabilities?.get(ids[t + 1] as never);
        if (p === undefined) throw new Error(`llama.cpp gave no probability for position ${t}`);
        total -= Math.log(p);
        count++;
      }
    }
  } finally {
    await context.dispose();
    await model.dispose();
  }
  return total / count;
}

async function ourNll(model: BaseModel, quantization: Quantization, texts: number[][], cacheDir: string): Promise<number> {
  const engine = await Engine.create(model, { cacheDir, quantization });
  try {
    return await meanNll(engine, texts);
  } finally {
    await engine.dispose();
  }
}

async function main(): Promise<void> {
  const dir = tempDir();
  const cacheDir = path.join(dir, 'cache');
  const hf = await loadModel(STORIES);
  const texts = validationIds(hf.tokenizer);
  const hfF32 = await ourNll(hf, 'f32', texts, cacheDir);
  const rel = (x: number) => +((100 * (x - hfF32)) / hfF32).toFixed(3);
  const line = (row: Record<string, unknown>) =>
    console.log(
      JSON.stringify({ ...row, texts: texts.length, tokens: texts.reduce((a, t) => a + t.length - 1, 0), load_avg: os.loadavg()[0] }),
    );
  for (const quantization of ['f32', 'q8', 'q4'] as const) {
    const nll = quantization === 'f32' ? hfF32 : await ourNll(hf, quantization, texts, cacheDir);
    line({ model: 'stories260K (Hugging Face folder)', quantization, ours_nll: +nll.toFixed(5), ours_pct_vs_f32: rel(nll) });
  }
  const llama = await cpuLlama();
  try {
    for (const type of TYPES) {
      const file = path.join(dir, `stories260K-${type}.gguf`);
      await writeStoriesGguf(file, type);
      const model = await importGguf(file);
      const stored = type.startsWith('Q') ? await ourNll(model, 'stored', texts, cacheDir) : undefined;
      const decoded = await ourNll(model, 'f32', texts, cacheDir);
      const theirs = await llamaCppNll(llama, file, texts);
      line({
        model: `stories260K-${type}.gguf`,
        ours_nll: stored === undefined ? undefined : +stored.toFixed(5),
        ours_decoded_nll: +decoded.toFixed(5),
        llamacpp_nll: +theirs.toFixed(5),
        ours_pct_vs_f32: stored === undefined ? undefined : rel(stored),
        decoded_pct_vs_f32: rel(decoded),
        llamacpp_pct_vs_f32: rel(theirs),
      });
    }
  } finally {
    await llama.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

// The bench's llama.cpp side: each bench model written as GGUF (F32, Q8_0, Q4_0, the way
// convert_hf_to_gguf.py and llama-quantize write a Llama model) and timed with
// node-llama-cpp's prebuilt CPU build on the same token ids, thread count and token counts
// as our engine.

import * as fs from 'fs';
import * as path from 'path';
import type { Quantization } from '../../src/engine/quantize';
import { loadModel } from '../../src/model/load';
import { bool, ints, floats, str, strings, u32, writeModelGguf, type Meta, type StoriesType } from '../model/gguf_writer';

type NodeLlamaCpp = typeof import('node-llama-cpp');

/** The GGUF type llama.cpp users pick for each of our quantizations. */
export const GGUF_TYPE: Record<Exclude<Quantization, 'stored'>, StoriesType> = { f32: 'F32', q8: 'Q8_0', q4: 'Q4_0' };

/**
 * `<model dir>/<name>-<TYPE>.gguf`, written once (through a temporary file, so a killed bench
 * leaves no half file). The bench feeds token ids, so the vocabulary is placeholder pieces.
 */
export async function ensureGguf(dir: string, type: StoriesType, log: (m: string) => void): Promise<string> {
  const model = await loadModel(dir);
  const file = path.join(dir, `${model.name}-${type}.gguf`);
  if (fs.existsSync(file)) return file;
  log(`writing ${file}`);
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeModelGguf(tmp, model, type, { extraMeta: placeholderVocab(model.config.vocabSize), noChatTemplate: true });
    fs.renameSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  return file;
}

/** A SentencePiece-style vocabulary of `size` pieces: <unk>, <s>, </s>, the 256 bytes, then plain pieces. */
function placeholderVocab(size: number): Meta {
  const pieces = Array.from({ length: size }, (_, id) =>
    id === 0
      ? '<unk>'
      : id === 1
        ? '<s>'
        : id === 2
          ? '</s>'
          : id < 259
            ? `<0x${(id - 3).toString(16).toUpperCase().padStart(2, '0')}>`
            : `▁t${id}`,
  );
  return {
    'tokenizer.ggml.model': str('llama'),
    'tokenizer.ggml.tokens': strings(pieces),
    'tokenizer.ggml.scores': floats(pieces.map((_, id) => -id)),
    'tokenizer.ggml.token_type': ints(pieces.map((_, id) => (id === 0 ? 2 : id < 3 ? 3 : id < 259 ? 6 : 1))),
    'tokenizer.ggml.bos_token_id': u32(1),
    'tokenizer.ggml.eos_token_id': u32(2),
    'tokenizer.ggml.add_bos_token': bool(false),
  };
}

/** llama.cpp through node-llama-cpp: its prebuilt CPU binary only, never a build or a download. */
export async function cpuLlama(): Promise<Awaited<ReturnType<NodeLlamaCpp['getLlama']>>> {
  // node-llama-cpp is ESM with top-level await: a real import(), which tsc's CommonJS output would turn into require().
  const esmImport = new Function('m', 'return import(m)') as (m: string) => Promise<NodeLlamaCpp>;
  const { getLlama } = await esmImport('node-llama-cpp');
  return getLlama({ gpu: false, build: 'never', logLevel: 'warn' as never });
}

export interface LlamaSpec {
  gguf: string;
  mode: 'prefill' | 'decode' | 'context';
  reps: { warmup: number; reps: number };
  threads: number;
  /** The token ids our engine gets in the same mode. */
  prefillIds: number[];
  promptIds: number[];
  newTokens: number;
  contextIds: Record<string, number[]>;
  contextNewTokens: number;
}

/** Runs one mode on llama.cpp: the timed repetitions (`times_s`) and the tokens each covers. */
export async function childLlamaCpp(spec: LlamaSpec, log: (m: string) => void): Promise<Record<string, unknown>> {
  const t0 = performance.now();
  const llama = await cpuLlama();
  const model = await llama.loadModel({ modelPath: spec.gguf, gpuLayers: 0 });
  const longest = Math.max(
    spec.prefillIds.length,
    spec.promptIds.length + spec.newTokens,
    ...Object.values(spec.contextIds).map((c) => c.length + spec.contextNewTokens),
  );
  const context = await model.createContext({ contextSize: longest + 8, batchSize: 512, threads: spec.threads });
  const seq = context.getSequence();
  const loadS = (performance.now() - t0) / 1000;
  log(`llama.cpp: loaded ${path.basename(spec.gguf)} in ${loadS.toFixed(2)}s, mode ${spec.mode}`);
  const times: number[] = [];
  const extra: Record<string, unknown> = {};
  let tokens: number;
  const timeOnce = async (run: () => Promise<void>) => {
    await seq.clearHistory();
    const t = performance.now();
    await run();
    return (performance.now() - t) / 1000;
  };
  const greedy = async (ids: number[], n: number): Promise<number[]> => {
    const out: number[] = [];
    for await (const token of seq.evaluate(ids as never[], { temperature: 0 })) {
      out.push(token as number);
      if (out.length === n) break;
    }
    return out;
  };
  try {
    if (spec.mode === 'prefill') {
      for (let i = 0; i < spec.reps.warmup + spec.reps.reps; i++) {
        const dt = await timeOnce(() => seq.evaluateWithoutGeneratingNewTokens(spec.prefillIds as never[]));
        if (i >= spec.reps.warmup) times.push(dt);
        log(`llama.cpp prefill ${i}${i < spec.reps.warmup ? ' (warm-up)' : ''} ${dt.toFixed(3)}s`);
      }
      tokens = spec.prefillIds.length;
    } else if (spec.mode === 'decode') {
      let ids: number[] = [];
      for (let i = 0; i < spec.reps.warmup + spec.reps.reps; i++) {
        const dt = await timeOnce(async () => {
          ids = await greedy(spec.promptIds, i < spec.reps.warmup ? 8 : spec.newTokens);
        });
        if (i >= spec.reps.warmup) times.push(dt);
        log(`llama.cpp decode ${i} ${ids.length} tokens ${dt.toFixed(3)}s`);
      }
      if (ids.length !== spec.newTokens) throw new Error(`llama.cpp generated ${ids.length} tokens, expected ${spec.newTokens}`);
      tokens = spec.newTokens;
    } else {
      const perContext: Record<string, number> = {};
      for (const [n, ids] of Object.entries(spec.contextIds)) {
        await seq.clearHistory();
        await seq.evaluateWithoutGeneratingNewTokens(ids.slice(0, -1) as never[]);
        const t = performance.now();
        await greedy(ids.slice(-1), spec.contextNewTokens);
        const dt = (performance.now() - t) / 1000;
        perContext[n] = spec.contextNewTokens / dt;
        times.push(dt);
        log(`llama.cpp decode after ${n} tokens: ${perContext[n].toFixed(2)} tok/s`);
      }
      tokens = spec.contextNewTokens;
      extra.decode_tokens_per_s_at_context = perContext;
    }
  } finally {
    await context.dispose();
    await model.dispose();
    await llama.dispose();
  }
  return {
    impl: 'llama.cpp',
    mode: spec.mode,
    tokens,
    times_s: times,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    load_s: loadS,
    threads: spec.threads,
    ...extra,
  };
}

// Autoregressive generation of one request on the engine: prefill once, then one
// decode step per token through the KV cache, streaming text as it becomes stable.

import type { Engine } from '../engine/engine';
import type { AdapterWeights } from '../adapter/types';
import { GenerateOptions, GenerateResult, Sequence } from './sequence';

export type { FinishReason, GenerateOptions, GenerateResult } from './sequence';

export async function generate(
  engine: Engine,
  promptIds: number[],
  adapter: AdapterWeights | null,
  opts: GenerateOptions = {},
): Promise<GenerateResult> {
  const seq = new Sequence(engine.model, promptIds, { ...opts, adapterName: adapter ? (opts.adapterName ?? 'the adapter') : undefined });
  if (seq.done) return seq.result();
  const { state, logits } = await engine.prefill([promptIds], [adapter]);
  let next = seq.next(logits[0]);
  while (next !== null) {
    [logits[0]] = await engine.decode(state, [next]);
    next = seq.next(logits[0]);
  }
  return seq.result();
}

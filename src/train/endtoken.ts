// Which token ends a training text. TRL appends tokenizer.eos_token, but a
// model's stop ids (generation_config's eos_token_id, a scalar or a list, plus
// BOS for llama2.c-style models, whose stories end with <s>: the converted
// stories260K says eos 2 yet never saw id 2 in training) do not say which of
// them the model itself writes after a finished text. So we ask the model: the
// candidate it finds most likely after the first few training texts wins. A
// single candidate needs no forward pass.

import type { Engine } from '../engine/engine';
import { stopTokenIds } from '../model/generation';

/** Texts probed: enough to outvote one odd text, cheap even for a large model. */
const PROBES = 4;

/**
 * @param texts the training texts in order (prompt + answer), without special tokens
 * @returns the end token id, or null when the model has no stop id at all
 */
export async function endTokenId(engine: Engine, texts: string[]): Promise<number | null> {
  const candidates = [...stopTokenIds(engine.model.generation, { stopOnBos: true })];
  if (candidates.length <= 1) return candidates[0] ?? null;
  const rows = texts
    .slice(0, PROBES)
    .map((t) => engine.model.tokenizer.encode(t))
    .filter((ids) => ids.length > 0 && ids.length <= engine.model.config.maxPositions);
  if (rows.length === 0) return candidates[0];
  const logits = await engine.logits(
    rows,
    rows.map(() => null),
    { lastOnly: true },
  );
  // Logits share one softmax per row, so summing them across rows ranks candidates like summed log-probs would, up to a per-row constant.
  const score = (id: number) => logits.reduce((sum, row) => sum + row[id], 0);
  return candidates.reduce((best, id) => (score(id) > score(best) ? id : best));
}

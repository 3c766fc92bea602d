// What a model's generation settings say about where a text ends, shared by
// generation (when to stop) and training (which token ends a training text).

import type { GenerationDefaults } from './types';

/**
 * The ids that end a generation: generation_config's EOS ids, plus BOS when
 * asked, for models such as llama2.c's stories that end a story by emitting BOS
 * (see datasets/stories-style/README.md).
 */
export function stopTokenIds(generation: GenerationDefaults, opts: { stopOnBos?: boolean } = {}): ReadonlySet<number> {
  const ids = new Set(generation.eosTokenIds);
  if (opts.stopOnBos && generation.bosTokenId !== null) ids.add(generation.bosTokenId);
  return ids;
}

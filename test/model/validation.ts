// The texts the GGUF NLL checks score, and our engine's mean NLL on them: the first 16 records
// of the stories-style validation set, at most 256 tokens each. Shared by test/engine/gguf.test.ts
// and `npm run bench:gguf`, which scores the same token ids on llama.cpp.

import * as fs from 'fs';
import * as path from 'path';
import type { Engine } from '../../src/engine/engine';
import type { BaseModel } from '../../src/model/types';
import { STYLE_DIR } from './paths';

/** Token ids of each validation text (BOS first, as the tokenizer adds it). */
export function validationIds(tokenizer: BaseModel['tokenizer']): number[][] {
  return fs
    .readFileSync(path.join(STYLE_DIR, 'base.val.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .slice(0, 16)
    .map((line) => {
      const record = JSON.parse(line) as Record<string, string>;
      return tokenizer.encode(record.text ?? `${record.prompt}${record.completion}`).slice(0, 256);
    });
}

/** Mean negative log-likelihood per predicted token (each id given the ones before it) of `texts`. */
export async function meanNll(engine: Engine, texts: number[][]): Promise<number> {
  let total = 0;
  let count = 0;
  for (const ids of texts) {
    const T = ids.length;
    const logps = await engine.tokenLogps(
      {
        rows: 1,
        length: T,
        inputIds: Int32Array.from(ids),
        targets: Int32Array.from([...ids.slice(1), 0]),
        mask: Uint8Array.from(ids.map((_, t) => (t < T - 1 ? 1 : 0))),
      },
      null,
    );
    for (const lp of logps) total -= lp;
    count += logps.length;
  }
  return total / count;
}

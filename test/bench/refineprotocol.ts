// The setup of test/cli/refine.test.ts for the benches that study it (refinesweep, refineseeds,
// refinefloor; issue 11, item 4): the start adapter (SFT for 3 steps on 48 shout stories, as the
// test trains it through the CLI), the shout corrections of its own answers, the "!" share of 50
// samples and the validation NLL on 40 unstyled stories.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AdapterWeights } from '../../src/adapter/types';
import { makeBatches } from '../../src/data/batches';
import { toExamples } from '../../src/data/examples';
import type { PreferenceRecord } from '../../src/data/records';
import { readTrainingFile } from '../../src/data/source';
import type { Engine } from '../../src/engine/engine';
import type { TextTokenizer } from '../../src/model/types';
import { train } from '../../src/train/trainer';
import { adherence, sampleStories, shout, STYLE_SAMPLING } from './style';
import { STYLE_DIR, tempDir } from '../model/paths';

export const PROMPT = 'Once upon a time';
/** Answer and sample length, as the test's. */
export const LENGTH = 120;
/** The test's sampling seed first, then others: 50 samples each. */
export const SAMPLING_SEEDS = [900001, 900101, 900201, 900301];

/** The 40 unstyled validation stories, scored with stories260K's end token (BOS, id 1) as training scores them. */
export const VALIDATION = fs
  .readFileSync(path.join(STYLE_DIR, 'base.val.jsonl'), 'utf8')
  .split('\n')
  .filter(Boolean)
  .slice(0, 40)
  .map((l) => (JSON.parse(l) as { text: string }).text);
export const END_ID = 1;

/** The validation stories as training tokenises them (end token appended). */
export function validationExamples(tokenizer: TextTokenizer) {
  return toExamples(
    VALIDATION.map((text) => ({ text })),
    'text',
    tokenizer,
    { maxLen: 512, endId: END_ID },
  ).items;
}

/** The token ids of the sentence-final "." and "!" that the shout style swaps. */
export function punctuationIds(tokenizer: TextTokenizer): { dot: number; bang: number } {
  return { dot: tokenizer.encode('Hi.').at(-1)!, bang: tokenizer.encode('Yes!').at(-1)! };
}

export async function refineProtocol(engine: Engine) {
  const stories = path.join(tempDir(), 'shout.jsonl');
  fs.writeFileSync(stories, fs.readFileSync(path.join(STYLE_DIR, 'shout.train.jsonl'), 'utf8').split('\n').slice(0, 48).join('\n'));
  const start = (await train(engine, readTrainingFile(stories), { steps: 3, valSplit: 0 })).adapter;
  const val = makeBatches(validationExamples(engine.model.tokenizer), { batchSize: 20, seed: 0, shuffle: false, padId: 0 });
  return {
    start,
    /** Token-mean NLL of the validation stories. */
    async nll(a: AdapterWeights): Promise<number> {
      let total = 0;
      let count = 0;
      for (const b of val) {
        total -= (await engine.sequenceLogps(b, a)).reduce((x, y) => x + y, 0);
        count += b.mask.reduce((x, y) => x + y, 0);
      }
      return total / count;
    },
    /** The mean "!" share of 50 samples, per sampling seed. */
    async shares(a: AdapterWeights, seeds = SAMPLING_SEEDS): Promise<number[]> {
      const out = [];
      for (const seed of seeds) {
        const samples = await sampleStories(engine, PROMPT, a, { count: 50, ...STYLE_SAMPLING, seed, maxNewTokens: LENGTH });
        out.push(adherence('shout', samples).meanBang!);
      }
      return out;
    },
    /** 64 answers of `a` at temperature 1 from `seed`, each with its shout correction (those with a sentence to correct). */
    async corrections(a: AdapterWeights, seed: number): Promise<PreferenceRecord[]> {
      const answers = await sampleStories(engine, PROMPT, a, { count: 64, temperature: 1, topP: 1, seed, maxNewTokens: LENGTH });
      return answers
        .map((s) => s.slice(PROMPT.length))
        .map((answer) => ({ prompt: PROMPT, chosen: shout(answer), rejected: answer }))
        .filter((p) => p.chosen !== p.rejected);
    },
  };
}

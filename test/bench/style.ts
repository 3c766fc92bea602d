// stories-style adherence (../shared/datasets/stories-style/README.md, "Measuring
// adherence"), implemented from that text, and seeded batch sampling of stories
// from one prompt. Shared by `npm run stylebench`, its reduced test and the DPO test.

import type { Engine } from '../../src/engine/engine';
import type { AdapterWeights } from '../../src/adapter/types';
import { sampleAnswers, type AnswerOptions } from '../../src/generate/answers';

export type Style = 'zoe' | 'moral' | 'shout';

export const ZOE_NAMES = (
  'Lily Timmy Tim Max Tom Spot Sue Amy Jack Tommy Benny Bob Ben Sally Lucy Billy Daisy Tweety Fluffy Mia Fin Sam Kitty ' +
  'Anna Fred Whiskers Bella Bobby Bobo Sammy Andy Joe Mittens Ducky Ellie Pinky Polly Remy'
).split(' ');

const TITLE = /(?:^|[^A-Za-z])(?:Mr|Mrs|Ms|Dr)$/;

/** Complete sentences of a text, by the README's segmentation (paragraphs, quotes, Mr./Dr. and what follows an end). */
export function completeSentences(text: string): string[] {
  const out: string[] = [];
  for (const paragraph of text.split('\n')) {
    let inQuote = false;
    let start = 0;
    let i = 0;
    while (i < paragraph.length) {
      const c = paragraph[i];
      if (c === '"') {
        inQuote = !inQuote;
        i++;
        continue;
      }
      if (c !== '.' && c !== '!' && c !== '?') {
        i++;
        continue;
      }
      let end = i;
      while (end < paragraph.length && '.!?'.includes(paragraph[end])) end++;
      const title = end - i === 1 && c === '.' && TITLE.test(paragraph.slice(0, i));
      if (!title && inQuote && paragraph[end] === '"') {
        inQuote = false;
        end++;
      }
      const rest = paragraph.slice(end);
      if (!title && !inQuote && (/^ *$/.test(rest) || /^ +[A-Z"]/.test(rest))) {
        out.push(paragraph.slice(start, end).trim());
        start = end;
      }
      i = end;
    }
    const tail = paragraph.slice(start).trim();
    if (tail && /[.!?]"?$/.test(tail)) out.push(tail);
  }
  return out;
}

/** The fraction of a text's complete sentences that end in "!" (0 without any). */
export function bangShare(text: string): number {
  const sentences = completeSentences(text);
  if (sentences.length === 0) return 0;
  return sentences.filter((s) => s.replace(/"$/, '').endsWith('!')).length / sentences.length;
}

/** The stories-style shout rule (README): "." before a space, newline, quote or the end becomes "!", except after Mr/Mrs/Ms/Dr. */
export function shout(text: string): string {
  return text.replace(/(?<![A-Za-z])(?:Mr|Mrs|Ms|Dr)\.|\.(?=[ \n"]|$)/g, (m) => (m.length > 1 ? m : '!'));
}

const wordRe = (w: string) => new RegExp(`(?<![A-Za-z0-9_])${w}(?![A-Za-z0-9_])`);
const NAME_RES = ZOE_NAMES.map(wordRe);
const ZOE_RE = wordRe('Zoe');

export interface Adherence {
  adherence: number;
  /** shout only: mean "!" share. */
  meanBang?: number;
}

export function adherence(style: Style, samples: string[]): Adherence {
  const frac = (ok: (s: string) => boolean) => samples.filter(ok).length / samples.length;
  if (style === 'zoe') return { adherence: frac((s) => ZOE_RE.test(s) && !NAME_RES.some((r) => r.test(s))) };
  if (style === 'moral') return { adherence: frac((s) => s.includes('The moral of the story is')) };
  const shares = samples.map(bangShare);
  return { adherence: shares.filter((x) => x > 0.8).length / samples.length, meanBang: shares.reduce((a, b) => a + b, 0) / samples.length };
}

/** How the adherence of samples is measured (../shared/datasets/stories-style/README.md, issue 11): temperature 0.8, top-p 0.9. */
export const STYLE_SAMPLING = { temperature: 0.8, topP: 0.9 };

export type SampleOptions = Omit<AnswerOptions, 'maxNewTokens'> & {
  /** Default: up to the model's context. */
  maxNewTokens?: number;
};

/**
 * `count` samples of prompt + continuation up to the model's context, each ending
 * at the first stop id (EOS, or BOS for llama2.c stories), with the prompt's text included.
 */
export async function sampleStories(
  engine: Engine,
  prompt: string,
  adapter: AdapterWeights | null,
  opts: SampleOptions & { count: number },
): Promise<string[]> {
  const { tokenizer } = engine.model;
  const promptIds = tokenizer.encode(prompt);
  const answers = await sampleAnswers(engine, Array(opts.count).fill(promptIds), adapter, {
    ...opts,
    maxNewTokens: opts.maxNewTokens ?? Infinity,
  });
  return answers.map((ids) => tokenizer.decode([...promptIds, ...ids], { skipSpecialTokens: true }));
}

// Tokenises text made of consecutive segments (prompt | completion, or the
// parts of a rendered chat) so that every segment boundary falls exactly on a
// token boundary.
//
// Encoding the whole text once gives the tokenisation the model saw in
// pre-training and sees again at generation time. SentencePiece-style
// tokenizers, however, prepend "▁" to every encode call, so encoding the pieces
// separately would turn " there" into "▁▁there". We therefore encode the whole
// text and each cumulative prefix, and use the whole encoding when every prefix
// encoding is a token prefix of it (the boundary is then exact). Only when a
// token merges across a boundary do we fall back to concatenating the separate
// encodings, which is exact by construction.

import type { TextTokenizer } from '../model/types';

export interface SegmentedIds {
  ids: number[];
  /** Token index where each segment starts; `starts[i+1]` (or ids.length) is where it ends. */
  starts: number[];
}

/**
 * @param leading ids put before the first segment and not produced by it (e.g. BOS);
 *   the segments are encoded without special tokens.
 */
export function encodeSegments(tokenizer: TextTokenizer, segments: string[], leading: number[]): SegmentedIds {
  return jointEncoding(tokenizer, segments, leading) ?? separateEncoding(tokenizer, segments, leading);
}

/** The special tokens the tokenizer puts before a text when addSpecialTokens is on (BOS for Llama). */
export function leadingSpecialIds(tokenizer: TextTokenizer): number[] {
  const probe = 'a';
  const withSpecial = tokenizer.encode(probe);
  const bare = tokenizer.encode(probe, { addSpecialTokens: false });
  const cut = withSpecial.length - bare.length;
  const endsWithBare = cut >= 0 && bare.every((id, i) => withSpecial[cut + i] === id);
  return endsWithBare ? withSpecial.slice(0, cut) : [];
}

function encodeBare(tokenizer: TextTokenizer, text: string): number[] {
  return text === '' ? [] : tokenizer.encode(text, { addSpecialTokens: false });
}

function jointEncoding(tokenizer: TextTokenizer, segments: string[], leading: number[]): SegmentedIds | null {
  const whole = encodeBare(tokenizer, segments.join(''));
  const starts: number[] = [];
  let prefixText = '';
  for (const segment of segments) {
    const prefix = encodeBare(tokenizer, prefixText);
    if (!isPrefix(prefix, whole)) return null;
    starts.push(leading.length + prefix.length);
    prefixText += segment;
  }
  return { ids: [...leading, ...whole], starts };
}

function separateEncoding(tokenizer: TextTokenizer, segments: string[], leading: number[]): SegmentedIds {
  const ids = [...leading];
  const starts: number[] = [];
  for (const segment of segments) {
    starts.push(ids.length);
    ids.push(...encodeBare(tokenizer, segment));
  }
  return { ids, starts };
}

function isPrefix(prefix: number[], whole: number[]): boolean {
  return prefix.length <= whole.length && prefix.every((id, i) => whole[i] === id);
}

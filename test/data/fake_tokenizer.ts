// A tiny deterministic TextTokenizer for data tests: one token per character
// (id = code point + 10), "<s>" = BOS (1), and the pair "th" merged into one
// token (500) so that tokens can straddle a segment boundary. With
// `prependSpace` it mimics SentencePiece's normaliser, which puts a space in
// front of every encoded text.

import type { ChatMessage, TextTokenizer } from '../../src/model/types';

export const BOS = 1;
const TH = 500;

export class FakeTokenizer implements TextTokenizer {
  readonly vocabSize = 1000;

  constructor(private readonly opts: { prependSpace?: boolean; chatTemplate?: boolean } = {}) {}

  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    const ids = opts.addSpecialTokens === false ? [] : [BOS];
    const normalized = this.opts.prependSpace ? ' ' + text : text;
    for (let i = 0; i < normalized.length; i++) {
      if (normalized.startsWith('<s>', i)) {
        ids.push(BOS);
        i += 2;
      } else if (normalized.startsWith('th', i)) {
        ids.push(TH);
        i += 1;
      } else {
        ids.push(normalized.charCodeAt(i) + 10);
      }
    }
    return ids;
  }

  decode(ids: number[]): string {
    return ids.map((id) => (id === BOS ? '<s>' : id === TH ? 'th' : String.fromCharCode(id - 10))).join('');
  }

  tokenId(token: string): number | null {
    if (token === '<s>') return BOS;
    if (token === 'th') return TH;
    return token.length === 1 ? token.charCodeAt(0) + 10 : null;
  }

  applyChatTemplate(messages: ChatMessage[], opts: { addGenerationPrompt?: boolean } = {}): string | null {
    if (!this.opts.chatTemplate) return null;
    const turns = messages.map((m) => `[${m.role}]${m.content}[end]`).join('');
    return `<s>${turns}${opts.addGenerationPrompt ? '[assistant]' : ''}`;
  }
}

/** The text of the tokens marked as targets, runs joined by "|". */
export function targetText(tok: FakeTokenizer, ids: number[], isTarget: Uint8Array): string {
  const runs: string[] = [];
  let run: number[] = [];
  ids.forEach((id, i) => {
    if (isTarget[i]) run.push(id);
    else if (run.length > 0) {
      runs.push(tok.decode(run));
      run = [];
    }
  });
  if (run.length > 0) runs.push(tok.decode(run));
  return runs.join('|');
}

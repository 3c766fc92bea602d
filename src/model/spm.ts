// The tokenizer.json of a SentencePiece BPE vocabulary (Llama 1/2, Mistral, TinyLlama,
// llama2.c), built the way Hugging Face's LlamaConverter builds it, from the pieces
// and their scores as llama2.c's tokenizer .bin and GGUF's tokenizer.ggml.* store them.

const SPACE = '\u2581';

export interface SentencePieceVocab {
  /** Piece strings by id, "▁" for spaces, byte pieces named <0xXX>. */
  pieces: string[];
  /** Merge priority of each piece (higher merges first); id order when absent. */
  scores?: number[];
  /** Ids of tokens matched before the model, as whole strings; `special` ones are skipped by decode when asked. */
  added: { id: number; special: boolean }[];
  unkId: number;
  /** Token put before every sequence, or null. */
  bosId: number | null;
  /** Token put after every sequence, or null. */
  eosId: number | null;
  /** SentencePiece's add_dummy_prefix: a "▁" before the text. */
  addSpacePrefix: boolean;
}

export function sentencePieceTokenizerJson(v: SentencePieceVocab): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  v.pieces.forEach((piece, id) => (vocab[piece] = id));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: v.added.map(({ id, special }) => ({
      id,
      content: v.pieces[id],
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special,
    })),
    normalizer: {
      type: 'Sequence',
      normalizers: [
        ...(v.addSpacePrefix ? [{ type: 'Prepend', prepend: SPACE }] : []),
        { type: 'Replace', pattern: { String: ' ' }, content: SPACE },
      ],
    },
    pre_tokenizer: null,
    post_processor: templateProcessing(v.pieces, v.bosId, v.eosId),
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: SPACE }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        ...(v.addSpacePrefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: v.pieces[v.unkId],
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      vocab,
      merges: mergesOf(v.pieces, vocab, v.scores),
    },
  };
}

/** BOS and/or EOS around each sequence, as Transformers' Llama tokenizer writes it; null when neither is added. */
export function templateProcessing(pieces: string[], bosId: number | null, eosId: number | null): Record<string, unknown> | null {
  if (bosId == null && eosId == null) return null;
  const special = (id: number | null, typeId: number) => (id == null ? [] : [{ SpecialToken: { id: pieces[id], type_id: typeId } }]);
  const seq = (name: string, typeId: number) => [
    ...special(bosId, typeId),
    { Sequence: { id: name, type_id: typeId } },
    ...special(eosId, typeId),
  ];
  const tokens: Record<string, unknown> = {};
  for (const id of [bosId, eosId]) if (id != null) tokens[pieces[id]] = { id: pieces[id], ids: [id], tokens: [pieces[id]] };
  return { type: 'TemplateProcessing', single: seq('A', 0), pair: [...seq('A', 0), ...seq('B', 1)], special_tokens: tokens };
}

/**
 * Merges as Hugging Face's SentencePiece converter derives them: (a, b) whenever a, b and a+b are
 * all pieces, ordered by the merged piece's score (higher first; ties and a missing score list in
 * id order), then by the ids of a and b.
 */
function mergesOf(pieces: string[], vocab: Record<string, number>, scores?: number[]): string[] {
  const merges: [number, number, number][] = [];
  pieces.forEach((piece, id) => {
    const chars = Array.from(piece); // split by code point, as Python does
    for (let i = 1; i < chars.length; i++) {
      const a = vocab[chars.slice(0, i).join('')];
      const b = vocab[chars.slice(i).join('')];
      if (a !== undefined && b !== undefined) merges.push([id, a, b]);
    }
  });
  const score = scores ?? pieces.map((_, id) => -id);
  merges.sort((x, y) => score[y[0]] - score[x[0]] || x[0] - y[0] || x[1] - y[1] || x[2] - y[2]);
  return merges.map(([, a, b]) => `${pieces[a]} ${pieces[b]}`);
}

// The gpt2 (byte-level BPE) tokenizer path of GGUF metadata on a real tokenizer:
// a byte-level BPE is trained here on stories and the multilingual texts (GPT-2's
// pre-tokenizer regex and byte alphabet, merges by pair frequency), written as a
// GPT-2-style tokenizer.json and, as convert_hf_to_gguf.py writes it, as
// tokenizer.ggml.* metadata in a GGUF file. Both must encode and decode alike.

import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { test } from 'node:test';
import { Metadata, readGgufHeader } from '../../src/model/gguf';
import { ggufTokenizer } from '../../src/model/gguf_tokenizer';
import { HfTokenizer } from '../../src/model/tokenizer';
import { bool, ints, str, strings, u32, writeGguf } from './gguf_writer';
import { STYLE_DIR, tempDir } from './paths';

/** The texts of test/model/gguf.test.ts plus more scripts and whitespace runs. */
const TEXTS = [
  'Once upon a time, there was a little girl named Lily.',
  'function add(a, b) {\n\treturn a + b; // sum\n}\n',
  'def f(x):\n    if x > 0:\n        return [i**2 for i in range(x)]\n',
  'Emoji: 🙂👍🏽🚀 and flags 🇫🇷🇯🇵, ZWJ 👩‍💻',
  '日本語のテキストと中文文本，还有한국어 문장.',
  'Ελληνικά, русский текст, العربية, עברית, हिन्दी',
  '   leading spaces,  two  spaces,\t\ttabs,\n\n\nnewlines   ',
  'Ünïcödé çàfé naïve résumé — “quotes” … ½ ² ∑',
  "It's, we'll, they're, I'd've: contractions; 12345 digits 3.14",
  'end of text <|endoftext|> in the middle',
  '',
];

/** GPT-2's pre-tokenizer split (tokenizers' ByteLevel use_regex). */
const GPT2_REGEX = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** GPT-2's bytes_to_unicode: printable bytes stand for themselves, the others for code points from 256. */
function byteAlphabet(): string[] {
  const chars: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    chars.push(String.fromCodePoint(printable ? b : next++));
  }
  return chars;
}

/** Byte-level BPE: `merges` times, the most frequent adjacent pair (ties: first seen) becomes a token. */
function trainBpe(corpus: string[], merges: number): { vocab: string[]; merges: string[] } {
  const alphabet = byteAlphabet();
  const words = new Map<string, number>();
  for (const text of corpus) {
    for (const piece of text.match(GPT2_REGEX) ?? []) {
      const symbols = Array.from(Buffer.from(piece, 'utf8'), (b) => alphabet[b]).join(' ');
      words.set(symbols, (words.get(symbols) ?? 0) + 1);
    }
  }
  let split = [...words].map(([w, n]) => ({ symbols: w.split(' '), n }));
  const vocab = [...alphabet];
  const done: string[] = [];
  for (let m = 0; m < merges; m++) {
    const counts = new Map<string, number>();
    for (const { symbols, n } of split)
      for (let i = 0; i + 1 < symbols.length; i++) {
        const pair = `${symbols[i]} ${symbols[i + 1]}`;
        counts.set(pair, (counts.get(pair) ?? 0) + n);
      }
    let best = '';
    let bestCount = 1;
    for (const [pair, n] of counts) if (n > bestCount) [best, bestCount] = [pair, n];
    if (!best) break;
    const [a, b] = best.split(' ');
    done.push(best);
    vocab.push(a + b);
    split = split.map(({ symbols, n }) => {
      const out: string[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (i + 1 < symbols.length && symbols[i] === a && symbols[i + 1] === b) {
          out.push(a + b);
          i++;
        } else out.push(symbols[i]);
      }
      return { symbols: out, n };
    });
  }
  return { vocab, merges: done };
}

/** A GPT-2-style tokenizer.json: ByteLevel pre-tokenizer with its own regex, BPE, <|endoftext|> special. */
function tokenizerJson(vocab: string[], merges: string[]): Record<string, unknown> {
  const eot = vocab.length - 1;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [{ id: eot, content: vocab[eot], single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab: Object.fromEntries(vocab.map((t, i) => [t, i])),
      merges,
    },
  };
}

test('a byte-level BPE from GGUF metadata (model gpt2, merges) encodes and decodes like its tokenizer.json', async () => {
  const stories = fs
    .readFileSync(path.join(STYLE_DIR, 'base.train.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .slice(0, 300)
    .map((line) => (JSON.parse(line) as { text?: string; prompt?: string; completion?: string }).text ?? '');
  // The multilingual texts weigh in too, so merges inside multi-byte characters are learnt.
  const { vocab, merges } = trainBpe([...stories, ...Array(20).fill(TEXTS).flat()], 400);
  assert.equal(merges.length, 400);
  vocab.push('<|endoftext|>');
  const eot = vocab.length - 1;
  const hf = new HfTokenizer(tokenizerJson(vocab, merges), { bos_token: '<|endoftext|>', eos_token: '<|endoftext|>' }, 'tokenizer.json');

  // convert_hf_to_gguf.py's GPT-2 vocabulary: tokens by id, types (1 normal, 3 control), merges "a b".
  const file = path.join(tempDir(), 'bpe.gguf');
  writeGguf(
    file,
    {
      'general.architecture': str('gpt2'),
      'tokenizer.ggml.model': str('gpt2'),
      'tokenizer.ggml.pre': str('gpt2'),
      'tokenizer.ggml.tokens': strings(vocab),
      'tokenizer.ggml.token_type': ints(vocab.map((_, id) => (id === eot ? 3 : 1))),
      'tokenizer.ggml.merges': strings(merges),
      'tokenizer.ggml.bos_token_id': u32(eot),
      'tokenizer.ggml.eos_token_id': u32(eot),
      'tokenizer.ggml.add_bos_token': bool(false),
    },
    [],
  );
  const header = await readGgufHeader(file);
  const fromGguf = ggufTokenizer(new Metadata(header.metadata, file), file);

  assert.equal(fromGguf.vocabSize, hf.vocabSize);
  for (const text of TEXTS) {
    const ids = hf.encode(text);
    assert.deepEqual(fromGguf.encode(text), ids, JSON.stringify(text));
    for (const skipSpecialTokens of [true, false])
      assert.equal(fromGguf.decode(ids, { skipSpecialTokens }), hf.decode(ids, { skipSpecialTokens }), JSON.stringify(text));
    assert.equal(hf.decode(ids), text, `${JSON.stringify(text)} round-trips`);
  }
  // The test means something: merges shorten the texts (multi-byte ones too), the special token is matched whole.
  assert.ok(hf.encode(TEXTS[0]).length < Buffer.byteLength(TEXTS[0]) / 2);
  assert.ok(hf.encode(TEXTS[9]).includes(eot));
  for (const i of [3, 4, 5])
    assert.ok(
      hf.encode(TEXTS[i]).length < 0.9 * Buffer.byteLength(TEXTS[i]),
      `merges in ${TEXTS[i]}: ${hf.encode(TEXTS[i]).length} tokens`,
    );
});

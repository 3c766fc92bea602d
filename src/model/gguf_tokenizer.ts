// The tokenizer of a GGUF file, from its tokenizer.ggml.* metadata, as the
// tokenizer.json that @huggingface/tokenizers runs: model "llama" is a
// SentencePiece BPE with scores (src/model/spm.ts), model "gpt2" a byte-level BPE
// with merges and llama.cpp's pre-tokenizer regex. tokenizer.chat_template is
// the chat template, rendered by @huggingface/jinja like a Hugging Face one.

import { ModelLoadError } from './errors';
import type { Metadata } from './gguf';
import { sentencePieceTokenizerJson, templateProcessing } from './spm';
import { HfTokenizer } from './tokenizer';

/** llama.cpp's token types (llama_token_type). */
const CONTROL = 3;
const USER_DEFINED = 4;

/**
 * Pre-tokenizer regexes by tokenizer.ggml.pre, copied from llama.cpp's llama-vocab.cpp (which
 * copies them from each model's tokenizer.json); NFC marks the models that normalize first.
 */
const GPT2_SPLIT = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const LLAMA3_SPLIT =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_SPLIT =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const PRE_TOKENIZERS: Record<string, { splits: string[]; nfc?: boolean }> = {
  default: { splits: [GPT2_SPLIT] },
  gpt2: { splits: [GPT2_SPLIT] },
  'llama-bpe': { splits: [LLAMA3_SPLIT] },
  llama3: { splits: [LLAMA3_SPLIT] },
  qwen2: { splits: [QWEN2_SPLIT], nfc: true },
  smollm: { splits: ['\\p{N}', GPT2_SPLIT] },
};

const isString = (v: unknown): v is string => typeof v === 'string';
const isNumber = (v: unknown): v is number => typeof v === 'number';

/** The tokenizer and chat template a GGUF file carries. */
export function ggufTokenizer(meta: Metadata, file: string): HfTokenizer {
  const json = ggufTokenizerJson(meta);
  const tokens = meta.array('tokenizer.ggml.tokens', isString, 'strings');
  const text = (key: string) => {
    const id = meta.optionalInt(key);
    return id == null || id >= tokens.length ? '' : tokens[id];
  };
  const config = {
    bos_token: text('tokenizer.ggml.bos_token_id'),
    eos_token: text('tokenizer.ggml.eos_token_id'),
    chat_template: meta.optionalString('tokenizer.chat_template') ?? undefined,
    clean_up_tokenization_spaces: false,
  };
  return new HfTokenizer(json, config, `${file} (tokenizer.ggml.*)`, `${file} (tokenizer.chat_template)`);
}

/** The tokenizer.json equivalent of the file's tokenizer.ggml.* metadata. */
export function ggufTokenizerJson(meta: Metadata): Record<string, unknown> {
  const model = meta.string('tokenizer.ggml.model');
  const tokens = meta.array('tokenizer.ggml.tokens', isString, 'strings');
  const types = meta.has('tokenizer.ggml.token_type') ? meta.array('tokenizer.ggml.token_type', isNumber, 'numbers') : tokens.map(() => 1);
  if (types.length !== tokens.length)
    throw new ModelLoadError(`${meta.file}: tokenizer.ggml.token_type has ${types.length} entries for ${tokens.length} tokens`);
  const id = (key: string) => {
    const v = meta.optionalInt(key);
    if (v != null && v >= tokens.length)
      throw new ModelLoadError(`${meta.file}: metadata "${key}" is ${v}, past the ${tokens.length} tokens`);
    return v;
  };
  const bos = id('tokenizer.ggml.bos_token_id');
  const eos = id('tokenizer.ggml.eos_token_id');
  const added = types.flatMap((t, i) => (t === CONTROL || t === USER_DEFINED ? [{ id: i, special: t === CONTROL }] : []));
  if (model === 'llama') {
    const scores = meta.has('tokenizer.ggml.scores') ? meta.array('tokenizer.ggml.scores', isNumber, 'numbers') : undefined;
    if (scores && scores.length !== tokens.length)
      throw new ModelLoadError(`${meta.file}: tokenizer.ggml.scores has ${scores.length} entries for ${tokens.length} tokens`);
    const unkId = id('tokenizer.ggml.unknown_token_id') ?? 0;
    return sentencePieceTokenizerJson({
      pieces: tokens,
      scores,
      // SentencePiece's <unk> is a control token for Hugging Face too.
      added: added.some((a) => a.id === unkId) ? added : [{ id: unkId, special: true }, ...added].sort((a, b) => a.id - b.id),
      unkId,
      bosId: meta.bool('tokenizer.ggml.add_bos_token', true) ? bos : null,
      eosId: meta.bool('tokenizer.ggml.add_eos_token', false) ? eos : null,
      addSpacePrefix: meta.bool('tokenizer.ggml.add_space_prefix', true),
    });
  }
  if (model === 'gpt2') return byteLevelJson(meta, tokens, added, bos, eos);
  throw new ModelLoadError(
    `${meta.file}: unsupported tokenizer.ggml.model "${model}"; supported: llama (SentencePiece), gpt2 (byte-level BPE)`,
  );
}

function byteLevelJson(
  meta: Metadata,
  tokens: string[],
  added: { id: number; special: boolean }[],
  bos: number | null,
  eos: number | null,
): Record<string, unknown> {
  const merges = meta.array('tokenizer.ggml.merges', isString, 'strings');
  const preName = meta.optionalString('tokenizer.ggml.pre') ?? 'default';
  const pre = PRE_TOKENIZERS[preName];
  if (!pre)
    throw new ModelLoadError(
      `${meta.file}: unsupported tokenizer.ggml.pre "${preName}"; supported: ${Object.keys(PRE_TOKENIZERS).join(', ')}`,
    );
  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => (vocab[t] = i));
  const addBos = meta.bool('tokenizer.ggml.add_bos_token', false);
  const addEos = meta.bool('tokenizer.ggml.add_eos_token', false);
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added.map(({ id, special }) => ({
      id,
      content: tokens[id],
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special,
    })),
    normalizer: pre.nfc ? { type: 'NFC' } : null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        ...pre.splits.map((regex) => ({ type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false })),
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
      ],
    },
    post_processor: templateProcessing(tokens, addBos ? bos : null, addEos ? eos : null),
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}

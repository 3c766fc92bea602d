import * as fs from 'fs';
import * as path from 'path';
import { ModelLoadError, unreadable } from './errors';
import { legacyFingerprint, modelFingerprint } from './fingerprint';
import { sentencePieceTokenizerJson } from './spm';
import { HfTokenizer } from './tokenizer';
import type { BaseModel, ModelConfig, TensorRef } from './types';
import { checkWeights, FileWeightStore } from './weights';

const HEADER_BYTES = 7 * 4;
const BYTE_PIECES = 256;
/** Ids 0-2 are <unk>, <s>, </s>; ids 3-258 are the byte-fallback pieces. */
const FIRST_BYTE_ID = 3;
const SPACE = '\u2581';

interface Header {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  sharedClassifier: boolean;
  seqLen: number;
}

/**
 * Imports a legacy llama2.c checkpoint and its tokenizer .bin into the same in-memory form as a
 * Hugging Face folder. The weights are not copied: each TensorRef points into the .bin, and the
 * q/k rows keep llama2.c's interleaved rotary layout, which the engine supports as is.
 */
export async function importLlama2c(checkpoint: string, tokenizerBin: string): Promise<BaseModel> {
  const source = path.resolve(checkpoint);
  const header = readHeader(source);
  const config = configOf(header);
  const weights = new FileWeightStore(tensorRefs(source, header));
  checkWeights(weights, config, source);
  const tokenizer = new HfTokenizer(llama2cTokenizerJson(path.resolve(tokenizerBin), header.vocabSize), TOKENIZER_CONFIG, tokenizerBin);
  return {
    name: path.basename(source, path.extname(source)),
    source,
    config,
    weights,
    tokenizer,
    // llama2.c's data puts <s> before every story and has no </s>, so its models end a story
    // with <s>, and llama2.c's own generator stops there.
    generation: { bosTokenId: 1, eosTokenIds: [1, 2] },
    fingerprint: modelFingerprint(config, weights, tokenizer.vocabulary()),
    legacyFingerprint: legacyFingerprint(config, weights.ref('model.embed_tokens.weight')),
  };
}

/** The tokenizer_config.json of the Hugging Face conversion (Llama-2 style, no chat template). */
const TOKENIZER_CONFIG = {
  add_bos_token: true,
  add_eos_token: false,
  bos_token: '<s>',
  eos_token: '</s>',
  unk_token: '<unk>',
  clean_up_tokenization_spaces: false,
};

function readHeader(file: string): Header {
  const bytes = readStart(file, HEADER_BYTES);
  if (bytes.length < HEADER_BYTES) throw new ModelLoadError(`${file}: ${bytes.length} bytes, too short for the llama2.c header`);
  const names = ['dim', 'hidden_dim', 'n_layers', 'n_heads', 'n_kv_heads', 'vocab_size', 'seq_len'];
  const v = names.map((_, i) => bytes.readInt32LE(4 * i));
  names.forEach((name, i) => {
    if (v[i] === 0 || (v[i] < 0 && name !== 'vocab_size')) throw new ModelLoadError(`${file}: header field ${name} is ${v[i]}`);
  });
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocab, seqLen] = v;
  if (dim % nHeads !== 0) throw new ModelLoadError(`${file}: header dim ${dim} is not a multiple of n_heads ${nHeads}`);
  if (nHeads % nKvHeads !== 0) throw new ModelLoadError(`${file}: header n_kv_heads ${nKvHeads} does not divide n_heads ${nHeads}`);
  // A negative vocab_size is llama2.c's flag for a separate classifier matrix.
  return { dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize: Math.abs(vocab), sharedClassifier: vocab > 0, seqLen };
}

function configOf(h: Header): ModelConfig {
  return {
    family: 'llama',
    architecture: 'LlamaForCausalLM',
    hiddenSize: h.dim,
    intermediateSize: h.hiddenDim,
    numLayers: h.nLayers,
    numHeads: h.nHeads,
    numKvHeads: h.nKvHeads,
    headDim: h.dim / h.nHeads,
    vocabSize: h.vocabSize,
    maxPositions: h.seqLen,
    rmsNormEps: 1e-5, // llama2.c's rmsnorm
    ropeTheta: 10000, // llama2.c's rope
    ropeScaling: null,
    ropeLayout: 'interleaved',
    attentionBias: false,
    tieWordEmbeddings: h.sharedClassifier,
  };
}

/** Walks the float32 arrays of the checkpoint in file order, naming each layer's slice. */
function tensorRefs(file: string, h: Header): TensorRef[] {
  const headDim = h.dim / h.nHeads;
  const kvDim = h.nKvHeads * headDim;
  const refs: TensorRef[] = [];
  let offset = HEADER_BYTES;
  const add = (name: string, shape: number[]) => {
    const byteLength = shape.reduce((a, b) => a * b, 1) * 4;
    if (name) refs.push({ name, dtype: 'F32', shape, file, offset, byteLength });
    offset += byteLength;
  };
  const perLayer = (suffix: string, shape: number[]) => {
    for (let i = 0; i < h.nLayers; i++) add(`model.layers.${i}.${suffix}`, shape);
  };
  add('model.embed_tokens.weight', [h.vocabSize, h.dim]);
  perLayer('input_layernorm.weight', [h.dim]);
  perLayer('self_attn.q_proj.weight', [h.dim, h.dim]);
  perLayer('self_attn.k_proj.weight', [kvDim, h.dim]);
  perLayer('self_attn.v_proj.weight', [kvDim, h.dim]);
  perLayer('self_attn.o_proj.weight', [h.dim, h.dim]);
  perLayer('post_attention_layernorm.weight', [h.dim]);
  perLayer('mlp.gate_proj.weight', [h.hiddenDim, h.dim]); // w1
  perLayer('mlp.down_proj.weight', [h.dim, h.hiddenDim]); // w2
  perLayer('mlp.up_proj.weight', [h.hiddenDim, h.dim]); // w3
  add('model.norm.weight', [h.dim]);
  add('', [h.seqLen, headDim / 2]); // freq_cis_real: the engine computes its own rotary tables
  add('', [h.seqLen, headDim / 2]); // freq_cis_imag
  if (!h.sharedClassifier) add('lm_head.weight', [h.vocabSize, h.dim]);
  const size = fs.statSync(file).size;
  if (size < offset) throw new ModelLoadError(`${file}: truncated: the header implies ${offset} bytes but the file has ${size}`);
  return refs;
}

/**
 * Builds the Llama-2 style tokenizer.json of a llama2.c tokenizer .bin (max_token_length int32,
 * then per piece: float score, int32 length, bytes), the way the Hugging Face conversion of the
 * stories260K README does, so that both give the same ids.
 */
export function llama2cTokenizerJson(file: string, vocabSize: number): Record<string, unknown> {
  return sentencePieceTokenizerJson({
    pieces: readPieces(file, vocabSize),
    added: [0, 1, 2].map((id) => ({ id, special: true })),
    unkId: 0,
    bosId: 1,
    eosId: null,
    addSpacePrefix: true,
  });
}

/** Piece strings by id, with the special and byte pieces named the SentencePiece way. */
function readPieces(file: string, vocabSize: number): string[] {
  const bytes = readFile(file);
  const pieces: string[] = [];
  let offset = 4; // max_token_length, not needed
  for (let id = 0; id < vocabSize; id++) {
    if (offset + 8 > bytes.length) throw new ModelLoadError(`${file}: truncated at piece ${id} of ${vocabSize}`);
    const length = bytes.readInt32LE(offset + 4);
    if (length < 0 || offset + 8 + length > bytes.length) throw new ModelLoadError(`${file}: piece ${id} has a bad length ${length}`);
    const text = bytes.toString('utf8', offset + 8, offset + 8 + length);
    offset += 8 + length;
    pieces.push(pieceName(id, text));
  }
  return pieces;
}

function pieceName(id: number, text: string): string {
  if (id < FIRST_BYTE_ID) return ['<unk>', '<s>', '</s>'][id];
  if (id < FIRST_BYTE_ID + BYTE_PIECES) {
    return `<0x${(id - FIRST_BYTE_ID).toString(16).toUpperCase().padStart(2, '0')}>`;
  }
  // llama2.c stores SentencePiece's "▁" as a plain space.
  return text.replaceAll(' ', SPACE);
}

/** The first bytes of a checkpoint that may be far too large to read whole. */
function readStart(file: string, length: number): Buffer {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    throw unreadable(file, err);
  }
  try {
    const out = Buffer.alloc(length);
    return out.subarray(0, fs.readSync(fd, out, 0, length, 0));
  } finally {
    fs.closeSync(fd);
  }
}

function readFile(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw unreadable(file, err);
  }
}

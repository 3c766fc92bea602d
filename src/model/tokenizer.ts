import * as fs from 'fs';
import * as path from 'path';
import { Tokenizer } from '@huggingface/tokenizers';
import { readRegularFile } from '../util/files';
import { parseJson } from '../util/json';
import { ModelLoadError } from './errors';
import { ChatTemplate } from './template';
import type { ChatMessage, TextTokenizer } from './types';

type Json = Record<string, unknown>;

/** A Hugging Face fast tokenizer (tokenizer.json + tokenizer_config.json) with its chat template. */
export class HfTokenizer implements TextTokenizer {
  readonly vocabSize: number;
  private readonly tokenizer: Tokenizer;
  private readonly template: ChatTemplate | null;
  private readonly specialTokens: { bos_token: string; eos_token: string };
  private readonly cleanUpSpaces: boolean;
  private readonly templateSource: string;

  /** `tokenizerJson` and `config` are the parsed files; `source` and `configSource` name them in errors. */
  constructor(tokenizerJson: Json, config: Json, source: string, configSource = source) {
    try {
      this.tokenizer = new Tokenizer(tokenizerJson, config);
      const vocab = this.tokenizer.get_vocab(true);
      const bad = [...vocab].find(([, id]) => !Number.isSafeInteger(id) || id < 0);
      if (bad) throw new Error(`token ${JSON.stringify(bad[0].slice(0, 40))} has id ${String(bad[1]).slice(0, 40)}, not an integer >= 0`);
      this.vocabSize = vocab.size;
      // A malformed file can build a tokenizer that only fails when used: try it once here.
      const ids = this.tokenizer.encode('Hello, world!').ids;
      const badId = ids.find((id) => !Number.isSafeInteger(id) || id < 0);
      if (badId !== undefined) throw new Error(`it produces token id ${String(badId).slice(0, 40)}, not an integer >= 0`);
      this.tokenizer.decode(ids);
    } catch (err) {
      throw new ModelLoadError(`${source}: cannot build the tokenizer (${firstLine(err)})`);
    }
    // Transformers now defaults this to false; @huggingface/tokenizers defaults it to true, which
    // would change spaces before punctuation when decoding (see the stories260K README).
    this.cleanUpSpaces = config.clean_up_tokenization_spaces === true;
    this.specialTokens = { bos_token: tokenText(config.bos_token), eos_token: tokenText(config.eos_token) };
    this.template = compileTemplate(config.chat_template, configSource);
    this.templateSource = configSource;
  }

  /** Loads tokenizer.json and, when present, tokenizer_config.json from a model folder. */
  static fromFolder(dir: string): HfTokenizer {
    const tokenizerFile = path.join(dir, 'tokenizer.json');
    const configFile = path.join(dir, 'tokenizer_config.json');
    const config = fs.existsSync(configFile) ? readJson(configFile) : {};
    return new HfTokenizer(readJson(tokenizerFile), config, tokenizerFile, configFile);
  }

  /** Every token's string by id (added tokens included); '' for an id no token has. */
  vocabulary(): string[] {
    const tokens: string[] = [];
    for (const [token, id] of this.tokenizer.get_vocab(true)) tokens[id] = token;
    return Array.from(tokens, (t) => t ?? '');
  }

  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: opts.addSpecialTokens !== false }).ids;
  }

  tokenId(token: string): number | null {
    const id = this.tokenizer.token_to_id(token);
    return typeof id === 'number' ? id : null;
  }

  decode(ids: number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    if (ids.length === 0) return ''; // the library refuses an empty list
    return this.tokenizer.decode(ids, {
      skip_special_tokens: opts.skipSpecialTokens === true,
      clean_up_tokenization_spaces: this.cleanUpSpaces,
    });
  }

  applyChatTemplate(messages: ChatMessage[], opts: { addGenerationPrompt?: boolean } = {}): string | null {
    if (!this.template) return null;
    try {
      return this.template.render({
        messages,
        ...this.specialTokens,
        add_generation_prompt: opts.addGenerationPrompt === true,
      });
    } catch (err) {
      throw new ModelLoadError(`${this.templateSource}: chat_template fails on these messages (${firstLine(err)})`);
    }
  }
}

/** The largest JSON file of a model folder read (tokenizer.json of large vocabularies is ~35 MB). */
const MAX_JSON_BYTES = 256 * 1024 * 1024;

/** Reads a JSON file of a model folder (a regular file, bounded in size and depth), with errors that name the file. */
export function readJson(file: string): Json {
  let text: string;
  try {
    text = readRegularFile(file, MAX_JSON_BYTES).toString('utf8');
  } catch (err) {
    throw new ModelLoadError(`${file}: ${(err as Error).message}`);
  }
  try {
    return parseJson(text) as Json;
  } catch (err) {
    throw new ModelLoadError(`${file}: not valid JSON (${(err as Error).message})`);
  }
}

/** tokenizer_config.json writes special tokens as a string or as an AddedToken object. */
function tokenText(token: unknown): string {
  if (typeof token === 'string') return token;
  if (token && typeof token === 'object' && typeof (token as Json).content === 'string') return (token as Json).content as string;
  return '';
}

/** chat_template is a string, or a list of named templates of which "default" is the chat one. */
function compileTemplate(value: unknown, source: string): ChatTemplate | null {
  let text: unknown = value;
  if (Array.isArray(value)) text = value.find((t) => t && t.name === 'default')?.template;
  if (text == null) return null;
  if (typeof text !== 'string') throw new ModelLoadError(`${source}: field "chat_template" must be a string or a list of {name, template}`);
  return new ChatTemplate(text, source);
}

/** A library error's message as a short single line for our own message. */
function firstLine(err: unknown): string {
  const line = (err instanceof Error ? err.message : String(err)).split('\n')[0];
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

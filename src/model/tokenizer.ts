import * as fs from 'fs';
import * as path from 'path';
import { Tokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';
import { ModelLoadError, unreadable } from './errors';
import type { ChatMessage, TextTokenizer } from './types';

type Json = Record<string, unknown>;

/** A Hugging Face fast tokenizer (tokenizer.json + tokenizer_config.json) with its chat template. */
export class HfTokenizer implements TextTokenizer {
  readonly vocabSize: number;
  private readonly tokenizer: Tokenizer;
  private readonly template: Template | null;
  private readonly specialTokens: { bos_token: string; eos_token: string };
  private readonly cleanUpSpaces: boolean;

  /** `tokenizerJson` and `config` are the parsed files; `source` and `configSource` name them in errors. */
  constructor(tokenizerJson: Json, config: Json, source: string, configSource = source) {
    try {
      this.tokenizer = new Tokenizer(tokenizerJson, config);
    } catch (err) {
      throw new ModelLoadError(`${source}: cannot build the tokenizer (${(err as Error).message})`);
    }
    this.vocabSize = this.tokenizer.get_vocab(true).size;
    // Transformers now defaults this to false; @huggingface/tokenizers defaults it to true, which
    // would change spaces before punctuation when decoding (see the stories260K README).
    this.cleanUpSpaces = config.clean_up_tokenization_spaces === true;
    this.specialTokens = { bos_token: tokenText(config.bos_token), eos_token: tokenText(config.eos_token) };
    this.template = compileTemplate(config.chat_template, configSource);
  }

  /** Loads tokenizer.json and, when present, tokenizer_config.json from a model folder. */
  static fromFolder(dir: string): HfTokenizer {
    const tokenizerFile = path.join(dir, 'tokenizer.json');
    const configFile = path.join(dir, 'tokenizer_config.json');
    const config = fs.existsSync(configFile) ? readJson(configFile) : {};
    return new HfTokenizer(readJson(tokenizerFile), config, tokenizerFile, configFile);
  }

  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: opts.addSpecialTokens !== false }).ids;
  }

  decode(ids: number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    return this.tokenizer.decode(ids, {
      skip_special_tokens: opts.skipSpecialTokens === true,
      clean_up_tokenization_spaces: this.cleanUpSpaces,
    });
  }

  applyChatTemplate(messages: ChatMessage[], opts: { addGenerationPrompt?: boolean } = {}): string | null {
    if (!this.template) return null;
    return this.template.render({
      messages,
      ...this.specialTokens,
      add_generation_prompt: opts.addGenerationPrompt === true,
    });
  }
}

/** Reads a JSON file, with errors that name the file. */
export function readJson(file: string): Json {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw unreadable(file, err);
  }
  try {
    return JSON.parse(text) as Json;
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
function compileTemplate(value: unknown, source: string): Template | null {
  let text: unknown = value;
  if (Array.isArray(value)) text = value.find((t) => t && t.name === 'default')?.template;
  if (text == null) return null;
  if (typeof text !== 'string') throw new ModelLoadError(`${source}: field "chat_template" must be a string or a list of {name, template}`);
  try {
    return new Template(text);
  } catch (err) {
    throw new ModelLoadError(`${source}: chat_template does not parse (${(err as Error).message})`);
  }
}

// What an inline completion is asked from: where prose is being written (prose files, and
// comments in code), the prompt (fill-in-the-middle when the tokenizer has FIM tokens, else
// the text before the cursor continued), and the suggestion cut to what fits the cursor.
// No VS Code here, so the rules are unit-tested on their own.

import type { FimTokens, GenerationParams } from '../protocol';

/** The pause in typing after which a suggestion is asked for. */
export const INLINE_DEBOUNCE_MS = 75;

/** A suggestion runs to the end of the line, greedy (the same text for the same context), at most 24 tokens. */
export const INLINE_PARAMS: GenerationParams = { maxNewTokens: 24, temperature: 0, stop: ['\n'] };

/** Languages that are prose as a whole. */
export const PROSE_LANGUAGES = ['markdown', 'plaintext', 'git-commit', 'scminput'];

/** Line-comment openers by language; other languages get their suggestions in prose files only. */
const LINE_COMMENTS: Record<string, string[]> = {
  typescript: ['//'],
  typescriptreact: ['//'],
  javascript: ['//'],
  javascriptreact: ['//'],
  c: ['//'],
  cpp: ['//'],
  csharp: ['//'],
  java: ['//'],
  go: ['//'],
  rust: ['//'],
  swift: ['//'],
  kotlin: ['//'],
  scala: ['//'],
  dart: ['//'],
  php: ['//', '#'],
  python: ['#'],
  shellscript: ['#'],
  ruby: ['#'],
  perl: ['#'],
  r: ['#'],
  yaml: ['#'],
  toml: ['#'],
  dockerfile: ['#'],
  makefile: ['#'],
  powershell: ['#'],
  sql: ['--'],
  lua: ['--'],
  haskell: ['--'],
};

export const COMMENT_LANGUAGES = Object.keys(LINE_COMMENTS);

/**
 * Whether the cursor writes prose: anywhere in a prose language; in code, only after a line
 * comment's opener on the cursor's line or inside a block comment line (`/*`, ` * `).
 */
export function writesProse(languageId: string, lineBeforeCursor: string): boolean {
  if (PROSE_LANGUAGES.includes(languageId)) return true;
  const openers = LINE_COMMENTS[languageId];
  if (!openers) return false;
  const line = lineBeforeCursor.trimStart();
  if (openers.some((o) => line.startsWith(o))) return true;
  return openers.includes('//') && (line.startsWith('/*') || line.startsWith('* ') || line === '*');
}

/** Characters of context taken from each side of the cursor (the worker trims to the model's context in tokens). */
export const CONTEXT_CHARS = { before: 2000, after: 500 };

/** The prompt for the text around the cursor. */
export function inlinePrompt(before: string, after: string, fim: FimTokens | null): string {
  const b = before.slice(-CONTEXT_CHARS.before);
  if (!fim) return b;
  return `${fim.prefix}${b}${fim.suffix}${after.slice(0, CONTEXT_CHARS.after)}${fim.middle}`;
}

/**
 * The suggestion as shown: up to the end of its first line (the model may run on), with
 * trailing spaces dropped; empty when nothing is left. A suggestion at the very start of a
 * line does not begin with spaces.
 */
export function suggestion(generated: string, lineBeforeCursor: string): string {
  let text = generated.split('\n')[0].replace(/\s+$/, '');
  if (lineBeforeCursor.trim() === '') text = text.trimStart();
  return text;
}

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/** The shared read-only data folder, next to the repository (tests run from out/test/model). */
export const SHARED = path.resolve(__dirname, '..', '..', '..', '..', 'shared');
export const STORIES = path.join(SHARED, 'models', 'stories260K');
export const LLAMA2C_BIN = path.join(STORIES, 'llama2c', 'stories260K.bin');
export const LLAMA2C_TOKENIZER = path.join(STORIES, 'llama2c', 'tok512.bin');
export const STYLE_DIR = path.join(SHARED, 'datasets', 'stories-style');

/** A fresh temporary directory, removed when the process exits. */
export function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aligner-test-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A temporary copy of the stories260K folder (its top-level files) that a test may modify. */
export function copyOfStories(): string {
  const dir = path.join(tempDir(), 'stories260K');
  fs.mkdirSync(dir);
  for (const name of fs.readdirSync(STORIES)) {
    const src = path.join(STORIES, name);
    if (fs.statSync(src).isFile()) fs.copyFileSync(src, path.join(dir, name));
  }
  return dir;
}

interface Golden {
  prompts: { prompt: string; prompt_ids: number[]; generated_ids: number[]; text: string }[];
}

export function golden(): Golden {
  return JSON.parse(fs.readFileSync(path.join(STORIES, 'golden_greedy.json'), 'utf8')) as Golden;
}

// Turns free text (notes, markdown, commit messages) into {text} records.
// Chunks follow paragraph boundaries so each example reads as a coherent piece
// of the user's writing, and fenced code blocks are never cut in half.

import * as fs from 'fs';
import type { TextRecord } from './records';

export const DEFAULT_CHUNK_CHARS = 1500;

export interface ChunkOptions {
  /** Character budget per chunk; a paragraph or code block longer than this is kept whole where it cannot be cut at a line. */
  maxChars?: number;
}

export function readTextFile(file: string, opts: ChunkOptions = {}): TextRecord[] {
  return chunkText(fs.readFileSync(file, 'utf8'), opts);
}

/** Splits at blank lines (outside fences) and packs consecutive paragraphs up to the budget. */
export function chunkText(content: string, opts: ChunkOptions = {}): TextRecord[] {
  const maxChars = opts.maxChars ?? DEFAULT_CHUNK_CHARS;
  const pieces = paragraphs(content.replace(/\r\n?/g, '\n')).flatMap((p) => (p.length > maxChars ? splitParagraph(p, maxChars) : [p]));
  return pack(pieces, '\n\n', maxChars).map((text) => ({ text }));
}

function isFence(line: string): boolean {
  return line.trimStart().startsWith('```');
}

/** Paragraphs separated by blank lines; blank lines inside a fenced block belong to the block. */
function paragraphs(content: string): string[] {
  const result: string[] = [];
  let current: string[] = [];
  let inFence = false;
  for (const line of content.split('\n')) {
    if (isFence(line)) inFence = !inFence;
    if (!inFence && line.trim() === '') {
      if (current.length > 0) result.push(current.join('\n'));
      current = [];
    } else {
      current.push(line);
    }
  }
  if (current.length > 0) result.push(current.join('\n'));
  return result;
}

/** Cuts an over-long paragraph at line boundaries, keeping each fenced block as one unit. */
function splitParagraph(paragraph: string, maxChars: number): string[] {
  const units: string[] = [];
  let fence: string[] | null = null;
  for (const line of paragraph.split('\n')) {
    if (fence) {
      fence.push(line);
      if (isFence(line)) {
        units.push(fence.join('\n'));
        fence = null;
      }
    } else if (isFence(line)) {
      fence = [line];
    } else {
      units.push(line);
    }
  }
  // An unclosed fence runs to the end of the paragraph.
  if (fence) units.push(fence.join('\n'));
  return pack(units, '\n', maxChars);
}

/** Greedily joins consecutive pieces while the result stays within the budget. */
function pack(pieces: string[], separator: string, maxChars: number): string[] {
  const chunks: string[] = [];
  let current = '';
  for (const piece of pieces) {
    if (current !== '' && current.length + separator.length + piece.length > maxChars) {
      chunks.push(current);
      current = piece;
    } else {
      current = current === '' ? piece : current + separator + piece;
    }
  }
  if (current !== '') chunks.push(current);
  return chunks;
}

// Turns a training source into records: a file (TRL JSONL, or plain text/markdown
// chunked at paragraphs, SPEC §5), a list of files, or free texts (a selection, commit
// messages). The CLI reads one file; the worker receives a TrainSource from the client.

import * as path from 'path';
import { EmptyDataError } from './errors';
import { readJsonl } from './jsonl';
import type { RecordSet, TextRecord } from './records';
import { chunkText, readTextFile } from './text';

export type TrainSource =
  /** A JSONL dataset in any SPEC §5 form. */
  | { kind: 'jsonl'; file: string; validationFile?: string }
  /** Text or markdown files, chunked at paragraph boundaries. */
  | { kind: 'files'; files: string[] }
  /** Free texts (a selection, commit messages), each one or more {text} records. */
  | { kind: 'texts'; texts: string[]; chunk?: boolean };

export function readTrainingFile(file: string): RecordSet {
  if (path.extname(file).toLowerCase() === '.jsonl') return readJsonl(file);
  return { form: 'text', records: readTextFile(file), file };
}

export function readTrainSource(source: TrainSource): RecordSet {
  switch (source.kind) {
    case 'jsonl':
      return readJsonl(source.file);
    case 'files': {
      const records: TextRecord[] = [];
      for (const f of source.files) records.push(...readTextFile(f));
      if (records.length === 0) throw new EmptyDataError('The chosen files contain no text to train on.');
      return { form: 'text', records, file: source.files.length === 1 ? source.files[0] : `${source.files.length} files` };
    }
    case 'texts': {
      const records: TextRecord[] = [];
      for (const t of source.texts) {
        if (source.chunk === false) {
          if (t.trim()) records.push({ text: t });
        } else records.push(...chunkText(t));
      }
      if (records.length === 0) throw new EmptyDataError('There is no text to train on.');
      return { form: 'text', records, file: 'selection' };
    }
    default:
      throw new EmptyDataError(`Unknown training source ${(source as { kind: string }).kind}`);
  }
}

/** A short name for the adapter's metadata. */
export function describeSource(source: TrainSource): string {
  switch (source.kind) {
    case 'jsonl':
      return path.basename(source.file);
    case 'files':
      return source.files.length === 1 ? path.basename(source.files[0]) : `${source.files.length} files`;
    default:
      return `${source.texts.length} texts`;
  }
}

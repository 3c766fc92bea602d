// Reads a training source file: TRL JSONL, or plain text/markdown chunked at paragraphs (SPEC §5).

import * as path from 'path';
import { readJsonl } from './jsonl';
import type { RecordSet } from './records';
import { readTextFile } from './text';

export function readTrainingFile(file: string): RecordSet {
  if (path.extname(file).toLowerCase() === '.jsonl') return readJsonl(file);
  return { form: 'text', records: readTextFile(file), file };
}

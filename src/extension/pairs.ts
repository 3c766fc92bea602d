// The preference pairs a workspace collects from the chat panel's feedback, and the file they
// are kept in (one per workspace, in the extension's workspace storage; they never leave the
// machine unless the user exports them). Each line is TRL's preference form, the form
// `aligner refine` reads, plus where it came from:
//   {"prompt", "chosen", "rejected", "adapter", "base_fingerprint", "kind", "id", "time"}
//
// What makes a pair (and what does not):
// - Edit: the user's rewrite is chosen, the answer as the model wrote it rejected.
// - Regenerate, then "Prefer this" on one of the two answers: it is chosen, the other rejected.
// - 👍 on one of the two answers and 👎 on the other: the same pair as preferring the first.
// - A lone 👍 or 👎 makes no pair: it says how good one answer is, not which of two is better.
//   It is kept with the turn, and pairs it once there is a second answer with the opposite verdict
//   (so 👎 then Regenerate then 👍 on the new answer is a pair).
// No vscode import: the tests drive it directly.

import * as fs from 'fs';
import * as path from 'path';
import { DataError } from '../data/errors';
import { parseJsonl } from '../data/jsonl';
import type { PreferenceRecord } from '../data/records';
import { writeFileAtomic } from '../util/atomic';
import type { Answer, Column, Turn } from './webviewMessages';

export type PairKind = 'edit' | 'choice' | 'rating';

export interface StoredPair extends PreferenceRecord {
  /** `<turn id>/<kind>[-<column>]`: one pair per kind and turn, replaced when the feedback changes. */
  id: string;
  kind: PairKind;
  /** The name of the adapter that wrote the answers (null: the base model). */
  adapter: string | null;
  /** The base model's fingerprint (ModelInfo.fingerprint). */
  base_fingerprint: string;
  /** When the pair was recorded (ISO 8601). */
  time: string;
}

/** An adapter's name from its file (null for the base model). */
export function adapterName(file: string | null): string | null {
  return file === null ? null : path.basename(file).replace(/\.safetensors$/i, '');
}

/** Whether an answer can be half of a pair: complete or stopped, not failed, with the prompt it continued. */
function usable(a: Answer | undefined): a is Usable {
  return !!a && !a.error && typeof a.prompt === 'string' && typeof a.fingerprint === 'string' && a.text.trim() !== '';
}

type Usable = Answer & { prompt: string; fingerprint: string };

/** The pairs a turn's feedback makes (see the rules at the top of this file). */
export function pairsOfTurn(turn: Turn, now = new Date()): StoredPair[] {
  const out: StoredPair[] = [];
  const pair = (kind: PairKind, suffix: string, chosen: Usable, chosenText: string, rejected: string) =>
    out.push({
      prompt: chosen.prompt,
      chosen: chosenText,
      rejected,
      id: `${turn.id}/${kind}${suffix}`,
      kind,
      adapter: adapterName(chosen.adapter),
      base_fingerprint: chosen.fingerprint,
      time: now.toISOString(),
    });
  for (const c of ['adapter', 'again'] as const) {
    const a = turn.answers[c];
    if (usable(a) && a.edited !== undefined && a.edited.trim() !== '' && a.edited !== a.text) pair('edit', `-${c}`, a, a.edited, a.text);
  }
  const first = turn.answers.adapter;
  const second = turn.answers.again;
  // Two answers of one adapter to one prompt: comparable only when the model saw the same prompt.
  const comparable = usable(first) && usable(second) && first.prompt === second.prompt && first.fingerprint === second.fingerprint;
  if (comparable && first.adapter === second.adapter) {
    const other = (c: Column) => (c === 'adapter' ? second : first);
    if (turn.preferred === 'adapter' || turn.preferred === 'again') {
      const chosen = turn.answers[turn.preferred] as Usable;
      if (chosen.text !== other(turn.preferred).text) pair('choice', '', chosen, chosen.text, other(turn.preferred).text);
    } else if (first.rating && second.rating && first.rating !== second.rating && first.text !== second.text) {
      const [chosen, rejected] = first.rating === 'up' ? [first, second] : [second, first];
      pair('rating', '', chosen, chosen.text, rejected.text);
    }
  }
  return out;
}

/**
 * The workspace's pairs file, in the extension's storage for this workspace (without a workspace, a
 * folder of its global storage); never in the workspace itself. `ctx`: the vscode.ExtensionContext.
 */
export function feedbackStore(ctx: { storageUri?: { fsPath: string }; globalStorageUri: { fsPath: string } }): PairStore {
  const dir = ctx.storageUri?.fsPath ?? path.join(ctx.globalStorageUri.fsPath, 'no-workspace');
  return new PairStore(path.join(dir, 'preference-pairs.jsonl'));
}

/** The pairs file of one workspace. Every change rewrites it atomically: readers see the old list or the new one. */
export class PairStore {
  constructor(readonly file: string) {}

  /** Every pair; a file that is not a pairs file is a DataError naming it and the line. */
  all(): StoredPair[] {
    let content: string;
    try {
      content = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    if (content.trim() === '') return [];
    const set = parseJsonl(content, this.file); // the TRL fields, with the file and line of a bad one
    if (set.form !== 'preference')
      throw new DataError(this.file, 1, `expected {prompt, chosen, rejected} pairs, found the "${set.form}" form`);
    const out: StoredPair[] = [];
    content.split(/\r?\n/).forEach((raw, i) => {
      if (raw.trim() === '') return;
      const o = JSON.parse(raw) as Record<string, unknown>;
      const fail = (field: string, rule: string): never => {
        throw new DataError(this.file, i + 1, `field "${field}" must be ${rule}`);
      };
      if (typeof o.id !== 'string') fail('id', 'a string');
      if (o.kind !== 'edit' && o.kind !== 'choice' && o.kind !== 'rating') fail('kind', 'one of edit, choice, rating');
      if (o.adapter !== null && typeof o.adapter !== 'string') fail('adapter', 'a string or null');
      if (typeof o.base_fingerprint !== 'string') fail('base_fingerprint', 'a string');
      if (typeof o.time !== 'string') fail('time', 'a string');
      out.push(o as unknown as StoredPair);
    });
    return out;
  }

  /** The pairs for one adapter on one base model: what a refinement of that adapter learns from. */
  forAdapter(adapter: string | null, fingerprint: string): StoredPair[] {
    return this.all().filter((p) => p.adapter === adapter && p.base_fingerprint === fingerprint);
  }

  /** Replaces the pairs of one turn with `pairs` (none: the turn's feedback no longer makes a pair). */
  setTurn(turnId: string, pairs: StoredPair[]): void {
    const kept = this.all().filter((p) => !p.id.startsWith(`${turnId}/`));
    this.write([...kept, ...pairs]);
  }

  /** Writes `pairs` (by default all of them) as JSONL to `dest`; returns how many. */
  exportTo(dest: string, pairs: StoredPair[] = this.all()): number {
    writeFileAtomic(dest, toJsonl(pairs));
    return pairs.length;
  }

  private write(pairs: StoredPair[]): void {
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    writeFileAtomic(this.file, toJsonl(pairs));
  }
}

function toJsonl(pairs: StoredPair[]): string {
  return pairs.map((p) => `${JSON.stringify(p)}\n`).join('');
}

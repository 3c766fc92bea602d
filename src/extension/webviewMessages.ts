// The messages between the extension host and its webviews (chat, training), both
// directions, declared once. A webview is untrusted: what it sends is declared as a
// schema that `validate()` checks at run time, and the message types are
// derived from those schemas. What the host sends is a typed union. The page scripts
// (media/webview/*.js, `// @ts-check`) are type-checked against these same types.

import type { FinishReason, RefineResult, TrainOptions, TrainProgress, TrainResult, TrainSample } from '../protocol';

// ------------------------------------------------------------ schema → type

type FieldKind = 'string' | 'boolean' | 'number';
/** One field of a message from a webview; a trailing `?` makes it optional. */
export type FieldSpec = FieldKind | `${FieldKind}?`;
/** Message type → its fields (besides `type`). */
export type Schemas = Record<string, Record<string, FieldSpec>>;

interface KindType {
  string: string;
  boolean: boolean;
  number: number;
}
type Required<S> = { [F in keyof S as S[F] extends FieldKind ? F : never]: S[F] extends FieldKind ? KindType[S[F]] : never };
type Optional<S> = {
  [F in keyof S as S[F] extends `${FieldKind}?` ? F : never]?: S[F] extends `${infer K extends FieldKind}?` ? KindType[K] : never;
};
type Flat<T> = { [K in keyof T]: T[K] };
/** The union of messages a schema table accepts: `{ type: 'send'; text: string; compare: boolean } | …`. */
export type MessageOf<T extends Schemas> = { [K in keyof T & string]: Flat<{ type: K } & Required<T[K]> & Optional<T[K]>> }[keyof T &
  string];

/**
 * Accepts `msg` only if it is `{ type }` with exactly the fields its schema lists, of the listed types
 * (strings bounded, numbers finite); the result is typed by the same schema (webviewMessages.ts).
 */
export function validate<T extends Schemas>(msg: unknown, schemas: T, maxString = 200_000): MessageOf<T> | null {
  if (!msg || typeof msg !== 'object' || Array.isArray(msg)) return null;
  const m = msg as Record<string, unknown>;
  if (typeof m.type !== 'string' || !Object.prototype.hasOwnProperty.call(schemas, m.type)) return null;
  const schema = schemas[m.type];
  for (const key of Object.keys(m)) {
    if (key !== 'type' && !Object.hasOwn(schema, key)) return null; // own keys: never "constructor" or "__proto__"
  }
  for (const [key, spec] of Object.entries(schema)) {
    const optional = spec.endsWith('?');
    const kind = optional ? spec.slice(0, -1) : spec;
    const v = m[key];
    if (v === undefined) {
      if (optional) continue;
      return null;
    }
    if (typeof v !== kind) return null;
    if (kind === 'string' && (v as string).length > maxString) return null;
    if (kind === 'number' && !Number.isFinite(v)) return null;
  }
  return m as MessageOf<T>;
}

// ------------------------------------------------------------ chat

/**
 * 'again': a second answer of the adapter to the same prompt ("Regenerate"), shown beside the first;
 * 'version': an earlier version of the adapter (Adapter History's "Compare"), in place of the base model.
 */
export type Column = 'adapter' | 'base' | 'again' | 'version';
/** The columns whose answers take feedback (edit, rate, prefer): the adapter's. */
export const FEEDBACK_COLUMNS: readonly Column[] = ['adapter', 'again'];

export type Verdict = 'up' | 'down';

export interface Answer {
  text: string;
  /** The adapter file, or null for the base model. */
  adapter: string | null;
  finishReason?: FinishReason;
  error?: string;
  ms?: number;
  tokens?: number;
  /** What the model continued (ChatResult.prompt): the prompt of the preference pairs this answer is in. */
  prompt?: string;
  /** The fingerprint of the base model that answered. */
  fingerprint?: string;
  /** The user's rewrite of the answer ("Edit"): preferred to `text`. */
  edited?: string;
  rating?: Verdict;
}

/** One prompt and its answers, as kept in the workspace's history. */
export interface Turn {
  id: string;
  prompt: string;
  time: number;
  answers: Partial<Record<Column, Answer>>;
  /** Of the adapter's two answers ('adapter' and 'again'), the one the user prefers. */
  preferred?: Column;
}

/** A turn being answered: which columns stream, and their headings. */
export interface LiveTurn extends Turn {
  columns: Column[];
  labels: Record<Column, string>;
}

export const CHAT_FROM_WEBVIEW = {
  ready: {},
  send: { text: 'string', compare: 'boolean' },
  stop: {},
  copy: { text: 'string' },
  insert: { text: 'string' },
  clear: {},
  pickAdapter: {},
  setCompare: { compare: 'boolean' },
  /** Feedback on an adapter answer (column 'adapter' or 'again'); verdict 'up', 'down' or 'none'. */
  rate: { turnId: 'string', column: 'string', verdict: 'string' },
  edit: { turnId: 'string', column: 'string', text: 'string' },
  prefer: { turnId: 'string', column: 'string' },
  regenerate: { turnId: 'string' },
  refine: {},
  /** Back from comparing with an adapter version to comparing with the base model. */
  compareBase: {},
} as const satisfies Schemas;

export type ChatFromWebview = MessageOf<typeof CHAT_FROM_WEBVIEW>;

export type ChatToWebview =
  | { type: 'init'; history: Turn[]; compare: boolean }
  /** What "Compare" answers with: an adapter version (its label), or the base model (null). */
  | { type: 'compareTarget'; label: string | null }
  | { type: 'adapter'; label: string; active: boolean; problem?: string; model: string }
  | { type: 'turn'; turn: LiveTurn }
  /** A turn as saved after feedback (or a new column starting to stream, in `streaming`), drawn again. */
  | { type: 'update'; turn: Turn; labels: Record<Column, string>; streaming?: Column }
  /** How many preference pairs the workspace holds for the active adapter (shown beside "Refine"). */
  | { type: 'pairs'; count: number; adapter: string | null; problem?: string }
  | { type: 'busy'; busy: boolean }
  | { type: 'delta'; turnId: string; column: Column; delta: string }
  | { type: 'done'; turnId: string; column: Column; text: string; finishReason: FinishReason; ms?: number; tokens?: number }
  | { type: 'error'; turnId: string; column: Column; message: string };

// ------------------------------------------------------------ training

export const TRAIN_FROM_WEBVIEW = {
  ready: {},
  cancel: {},
  use: {},
} as const satisfies Schemas;

export type TrainFromWebview = MessageOf<typeof TRAIN_FROM_WEBVIEW>;

export type TrainToWebview =
  /** `refine`: a refinement of an existing adapter (Refine Style from Feedback), not a new one. */
  | { type: 'start'; name: string; source: string; model: string; options: TrainOptions; refine?: boolean }
  /** `timeLeft`: formatted by the host (src/util/duration.ts), null while unknown. */
  | { type: 'progress'; p: TrainProgress; timeLeft: string | null }
  /** Step 0: the starting point ("before"); later: the adapter at that step ("after"). */
  | { type: 'sample'; sample: TrainSample }
  | { type: 'cancelled' }
  | { type: 'error'; message: string }
  | { type: 'done'; result: TrainResult | RefineResult }
  | { type: 'used' };

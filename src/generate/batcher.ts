// Continuous batching: many generation requests, each with its own adapter (or
// none) and sampling settings, decoded together through the engine's step graph,
// one row per request. Requests that arrive while a batch decodes are prefilled
// and joined to it at the next step; finished rows leave it at once.

import type { DecodeState, Engine } from '../engine/engine';
import type { AdapterWeights } from '../adapter/types';
import { GenerateOptions, GenerateResult, Sequence } from './sequence';

export interface BatcherOptions {
  /** Rows decoded together at most. */
  maxBatch: number;
  /** Requests waiting for a row at most; more are refused with QueueFullError. */
  maxQueue: number;
}

export class QueueFullError extends Error {
  constructor(limit: number) {
    super(`the generation queue is full (${limit} requests waiting)`);
    this.name = 'QueueFullError';
  }
}

interface Request {
  seq: Sequence;
  adapter: AdapterWeights | null;
  resolve: (r: GenerateResult) => void;
  reject: (err: unknown) => void;
}

export class Batcher {
  private readonly waiting: Request[] = [];
  /** Rows of `state`, in order, with the token each feeds next. */
  private rows: { req: Request; token: number }[] = [];
  private state: DecodeState | null = null;
  private running = false;

  constructor(
    private readonly engine: Engine,
    private readonly opts: BatcherOptions,
  ) {}

  /** Requests decoding now and waiting. */
  get load(): { active: number; waiting: number } {
    return { active: this.rows.length, waiting: this.waiting.length };
  }

  /** Generates like generate(); rejects with QueueFullError when the queue is full, RangeError on a bad prompt or setting. */
  submit(promptIds: number[], adapter: AdapterWeights | null, opts: GenerateOptions = {}): Promise<GenerateResult> {
    return new Promise((resolve, reject) => {
      const seq = new Sequence(this.engine.model, promptIds, {
        ...opts,
        adapterName: adapter ? (opts.adapterName ?? 'the adapter') : undefined,
      });
      if (this.waiting.length >= this.opts.maxQueue) throw new QueueFullError(this.opts.maxQueue);
      if (seq.done) return resolve(seq.result());
      this.waiting.push({ seq, adapter, resolve, reject });
      if (!this.running) void this.loop();
    });
  }

  private async loop(): Promise<void> {
    this.running = true;
    try {
      while (this.rows.length > 0 || this.waiting.length > 0) {
        try {
          await this.admit();
          if (this.rows.length === 0) continue;
          const logits = await this.engine.decode(
            this.state!,
            this.rows.map((r) => r.token),
          );
          this.advance(logits);
        } catch (err) {
          // An engine failure fails the requests in the batch; waiting ones still get their turn.
          for (const { req } of this.rows) req.reject(err);
          this.rows = [];
          this.state = null;
        }
      }
    } finally {
      this.running = false;
    }
  }

  /** Prefills waiting requests (as many as there are free rows) and joins them to the batch. */
  private async admit(): Promise<void> {
    const fresh: Request[] = [];
    while (this.waiting.length > 0 && this.rows.length + fresh.length < this.opts.maxBatch) {
      const req = this.waiting.shift()!;
      if (req.seq.checkCancelled()) req.resolve(req.seq.result());
      else fresh.push(req);
    }
    if (fresh.length === 0) return;
    let prefilled;
    try {
      prefilled = await this.engine.prefill(
        fresh.map((r) => r.seq.promptIds),
        fresh.map((r) => r.adapter),
      );
    } catch (err) {
      for (const req of fresh) req.reject(err);
      return;
    }
    const { state, logits } = prefilled;
    this.state = this.state ? this.engine.joinStates(this.state, state) : state;
    this.rows.push(...fresh.map((req) => ({ req, token: -1 })));
    this.advance(logits, this.rows.length - fresh.length);
  }

  /**
   * Samples the next token of rows from `first` on, then lets finished rows go. A row whose
   * step fails (non-finite logits from its adapter, a throwing callback) fails its own request
   * and leaves; the other rows go on.
   */
  private advance(logits: Float32Array[], first = 0): void {
    const failed = new Set<Request>();
    for (let i = first; i < this.rows.length; i++) {
      const row = this.rows[i];
      try {
        row.token = row.req.seq.next(logits[i - first]) ?? -1;
      } catch (err) {
        row.token = -1;
        failed.add(row.req);
        row.req.reject(err);
      }
    }
    const keep: number[] = [];
    this.rows.forEach((r, i) => {
      if (r.token >= 0) keep.push(i);
      else if (!failed.has(r.req)) r.req.resolve(r.req.seq.result());
    });
    if (keep.length === this.rows.length) return;
    this.state = keep.length > 0 ? this.engine.keepRows(this.state!, keep) : null;
    this.rows = keep.map((i) => this.rows[i]);
  }
}

// Stop strings for streamed generation (the token ids that end a text are
// src/model/generation.ts's).

/**
 * Filters streamed text so that no stop string (nor any part of it) is ever
 * emitted. Text that could be the start of a stop string is held back until the
 * next delta decides; at a match, the text is cut before the earliest occurrence.
 */
export class StopMatcher {
  private held = '';
  private done = false;

  constructor(private readonly stops: string[]) {
    if (stops.some((s) => s === '')) throw new RangeError('stop strings must not be empty');
  }

  /** True once a stop string has been seen; later deltas are ignored. */
  get stopped(): boolean {
    return this.done;
  }

  /** Takes the next decoded delta and returns the text that is safe to show now. */
  push(delta: string): string {
    if (this.done) return '';
    const text = this.held + delta;
    const match = this.earliestMatch(text);
    if (match >= 0) {
      this.done = true;
      this.held = '';
      return text.slice(0, match);
    }
    const keep = this.partialTail(text);
    this.held = text.slice(text.length - keep);
    return text.slice(0, text.length - keep);
  }

  /** At the end of generation (EOS or length limit): the held-back text, which turned out not to be a stop string. */
  flush(): string {
    const rest = this.done ? '' : this.held;
    this.held = '';
    return rest;
  }

  private earliestMatch(text: string): number {
    let earliest = -1;
    for (const stop of this.stops) {
      const at = text.indexOf(stop);
      if (at >= 0 && (earliest < 0 || at < earliest)) earliest = at;
    }
    return earliest;
  }

  /** Length of the longest suffix of text that is a proper prefix of some stop string. */
  private partialTail(text: string): number {
    let longest = 0;
    for (const stop of this.stops) {
      for (let n = Math.min(stop.length - 1, text.length); n > longest; n--) {
        if (text.endsWith(stop.slice(0, n))) {
          longest = n;
          break;
        }
      }
    }
    return longest;
  }
}

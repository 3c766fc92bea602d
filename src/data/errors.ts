// Errors in user-supplied training data. A DataError's message starts with
// `FILE:LINE:` so editors and terminals can link straight to the bad line.

export class DataError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly detail: string,
  ) {
    super(`${file}:${line}: ${detail}`);
    this.name = 'DataError';
  }
}

/** Training data with nothing to learn from (no text, or no example left after tokenisation). */
export class EmptyDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EmptyDataError';
  }
}

// Errors in user-supplied training data. The message always starts with
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

/** An adapter file that cannot be read or is malformed; the message names the file and what is wrong. */
export class AdapterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AdapterError';
  }
}

/** A valid adapter that was made for another base model or does not fit this one's shapes. */
export class AdapterMismatchError extends AdapterError {
  constructor(message: string) {
    super(message);
    this.name = 'AdapterMismatchError';
  }
}

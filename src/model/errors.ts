/**
 * A model, tokenizer or adapter file that cannot be used. The message always names the
 * file and the field, tensor or line that is wrong, so it can be shown to the user as is.
 */
export class ModelLoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelLoadError';
  }
}

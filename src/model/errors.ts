/**
 * A model or tokenizer file that cannot be used (adapters have their own errors in
 * src/adapter/errors.ts). The message always names the file and the field, tensor or
 * line that is wrong, so it can be shown to the user as is.
 */
export class ModelLoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelLoadError';
  }
}

/** The error for a model file that cannot be opened: "not found", or the system's reason. */
export function unreadable(file: string, err: unknown): ModelLoadError {
  const code = (err as NodeJS.ErrnoException).code;
  return new ModelLoadError(code === 'ENOENT' ? `${file}: file not found` : `${file}: cannot read (${code})`);
}

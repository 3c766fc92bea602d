// JSON from untrusted files: nesting is bounded before parsing (JSON.parse itself copes with
// any depth, but whatever walks the result recursively later, JSON.stringify included, would
// overflow the stack), and values quoted in error messages are cut to a short excerpt.

/** The deepest nesting of objects and arrays in `text`, found in one pass (strings skipped). */
export function jsonDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) deepest = Math.max(deepest, ++depth);
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return deepest;
}

/** JSON.parse, refusing text nested deeper than `maxDepth` with a SyntaxError that says so. */
export function parseJson(text: string, maxDepth = 64): unknown {
  const depth = jsonDepth(text);
  if (depth > maxDepth) throw new SyntaxError(`nested ${depth} levels deep, more than the ${maxDepth} allowed`);
  try {
    return JSON.parse(text);
  } catch (err) {
    // V8 quotes the text around the error, control characters and line breaks included.
    throw new SyntaxError(printable((err as Error).message), { cause: err });
  }
}

/** `text` with control characters and line breaks escaped, so that it stays one line. */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return text.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, (c) => JSON.stringify(c).slice(1, -1));
}

/** `value` as a short JSON excerpt for an error message: at most `max` characters of it. */
export function excerpt(value: unknown, max = 60): string {
  let text: string;
  if (typeof value === 'string') text = JSON.stringify(value.length > max ? value.slice(0, max) : value);
  else {
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = Object.prototype.toString.call(value);
    }
  }
  const long = typeof value === 'string' ? value.length > max : text.length > max;
  return long ? `${text.slice(0, max)}… (${typeof value === 'string' ? value.length + ' characters' : 'cut'})` : text;
}

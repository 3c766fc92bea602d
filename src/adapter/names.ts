// Adapter names: what people may call an adapter (it becomes `<name>.safetensors` in a
// library folder), and the next free name when one is taken. The worker checks them on
// import, delete and training; the extension checks them as they are typed.

import * as fs from 'fs';
import * as path from 'path';

/**
 * Names people type: letters of any script, digits, spaces and punctuation such as
 * "my-style (1)" or "team's v2", up to 100 characters; not a path (no / \ or "..") and
 * nothing a file system refuses (control characters, < > : " | ? *, a leading dot or
 * space, a trailing dot or space).
 */
export function isValidAdapterName(name: string): boolean {
  return (
    typeof name === 'string' &&
    name.length >= 1 &&
    name.length <= 100 &&
    ![...name].some(forbidden) &&
    !/^[. ]|[. ]$/.test(name) &&
    !name.includes('..')
  );
}

/** Control characters, path separators and what Windows refuses in file names. */
function forbidden(c: string): boolean {
  const code = c.charCodeAt(0);
  return code < 0x20 || code === 0x7f || '/\\<>:"|?*'.includes(c);
}

/** `text` (a file or folder name) made into an adapter name: forbidden characters become '-', no dots or spaces at the ends. */
export function toAdapterName(text: string): string {
  return [...text]
    .map((c) => (forbidden(c) ? '-' : c))
    .join('')
    .replace(/^[. ]+|[. ]+$/g, '');
}

export const ADAPTER_NAME_RULE =
  'a name of up to 100 characters without / \\ < > : " | ? * or "..", not starting or ending with a dot or a space';

/** `name` if no adapter of that name is in `dir`, else the first free "name (2)", "name (3)", … */
export function freeAdapterName(dir: string, name: string): string {
  const taken = (n: string): boolean => fs.existsSync(path.join(dir, `${n}.safetensors`));
  if (!taken(name)) return name;
  const base = name.replace(/ \(\d+\)$/, '');
  for (let i = 2; ; i++) {
    const candidate = `${base} (${i})`;
    if (!taken(candidate)) return candidate;
  }
}

// Paths as users type them in settings: `~` means the home folder.

import * as os from 'os';
import * as path from 'path';

/** `~` or `~/…` (also `~\…`) resolved against the home folder; anything else unchanged. */
export function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') || p.startsWith('~\\') ? path.join(os.homedir(), p.slice(1)) : p;
}

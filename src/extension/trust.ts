// Workspace trust for adapter files: a workspace's settings may name any adapter path, and
// an adapter is read into the worker, so a path from workspace settings that leads outside
// the workspace and the adapter library is loaded only after the user confirms it.
// Pure path logic, without the vscode API, so it is unit-tested.

import * as path from 'path';

/** Whether `file` lies inside `dir` (or is it). */
function inside(file: string, dir: string): boolean {
  const rel = path.relative(path.resolve(dir), path.resolve(file));
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * True when the adapter `file`, named by a value that came from workspace (not user)
 * settings, is outside every workspace folder and every adapter-library folder.
 */
export function needsConfirmation(
  file: string,
  fromWorkspaceSettings: boolean,
  workspaceFolders: string[],
  libraryDirs: string[],
): boolean {
  if (!fromWorkspaceSettings) return false;
  return ![...workspaceFolders, ...libraryDirs].some((d) => inside(file, d));
}

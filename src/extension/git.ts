// Reads a repository through the git command line: the commit messages that "Train My
// Style" can learn from, and the staged diff a commit message is written for.

import { execFile } from 'child_process';

function git(cwd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('git', args, { cwd, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
      err ? reject(new Error(stderr || err.message)) : resolve(stdout),
    ),
  );
}

/** The messages of the latest `limit` non-merge commits of the repository at `cwd`, newest first. */
export async function commitMessages(cwd: string, limit = 2000): Promise<string[]> {
  const out = await git(cwd, ['log', '--no-merges', '-n', String(limit), '--format=%B%x00']);
  return out
    .split('\0')
    .map((m) => m.trim())
    .filter(Boolean);
}

/** The staged changes of the repository at `cwd` as a unified diff (empty when nothing is staged). */
export function stagedDiff(cwd: string): Promise<string> {
  return git(cwd, ['diff', '--cached', '--no-color', '--no-ext-diff']);
}

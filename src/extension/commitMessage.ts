// "Write Commit Message in My Style": a button in the Source Control view's title (and a
// command) that writes a message for the staged diff into the repository's input box,
// streamed as it is generated, by the base model with the workspace's adapter (trained,
// for example, on this repository's commit messages by Train My Style).
//
// VS Code's button inside the input box (menu `scm/inputBox`) is a proposed API
// (contribSourceControlInputBoxMenu) that published extensions cannot use, so the button
// sits in the view's title bar, next to Commit.

import { randomUUID } from 'crypto';
import * as vscode from 'vscode';
import { answerRoom } from '../generate/chat';
import { ChatRequest, CountTokensRequest, DescribeModelRequest, type ChatMessage } from '../protocol';
import { baseModelSetting, generationDefaults } from './config';
import { stagedDiff } from './git';
import type { AdapterLibrary } from './library';
import { resolveModelDir, type WorkerClient } from './worker';

/** What the git extension's API gives (the part used here; see vscode's extensions/git/src/api/git.d.ts). */
interface GitRepository {
  rootUri: vscode.Uri;
  inputBox: { value: string };
}
interface GitApi {
  repositories: GitRepository[];
}

/** A commit message's length, in tokens, at most. */
const MAX_MESSAGE_TOKENS = 96;

const INSTRUCTION = 'Write the commit message for these staged changes.';

export async function writeCommitMessage(worker: WorkerClient, library: AdapterLibrary, arg?: unknown): Promise<void> {
  const repo = await repository(arg);
  const diff = await stagedDiff(repo.rootUri.fsPath);
  if (!diff.trim()) {
    void vscode.window.showInformationMessage('Aligner: nothing is staged; stage the changes to describe first.');
    return;
  }
  const adapter = await library.resolveConfirmed();
  await worker.ensureModel();
  const spec = resolveModelDir(baseModelSetting());
  const card = await worker.request(DescribeModelRequest, { path: spec });
  const maxNewTokens = Math.min(MAX_MESSAGE_TOKENS, generationDefaults().maxNewTokens ?? MAX_MESSAGE_TOKENS);
  const messages = await fitDiff(worker, spec, diff, card.contextLength - answerRoom(card.contextLength, maxNewTokens));
  await vscode.window.withProgress(
    { location: vscode.ProgressLocation.SourceControl, title: 'Aligner: writing a commit message' },
    async () => {
      let text = '';
      repo.inputBox.value = '';
      const res = await worker.stream(
        ChatRequest,
        { requestId: `commit-${randomUUID()}`, messages, adapter, params: { ...generationDefaults(), maxNewTokens } },
        (delta) => {
          text += delta;
          repo.inputBox.value = text.trimStart();
        },
      );
      repo.inputBox.value = res.text.trim();
    },
  );
}

/** The repository the button was pressed for, else the one holding the active editor's file, else the first. */
async function repository(arg: unknown): Promise<GitRepository> {
  const git = vscode.extensions.getExtension<{ getAPI(version: 1): GitApi }>('vscode.git');
  if (!git) throw new Error('the Git extension (vscode.git) is not available.');
  const api = (git.isActive ? git.exports : await git.activate()).getAPI(1);
  const root = (arg as { rootUri?: vscode.Uri } | undefined)?.rootUri;
  const active = vscode.window.activeTextEditor?.document.uri.fsPath;
  const repo =
    api.repositories.find((r) => root && r.rootUri.fsPath === root.fsPath) ??
    api.repositories.find((r) => active?.startsWith(r.rootUri.fsPath)) ??
    api.repositories[0];
  if (!repo) throw new Error('no Git repository is open.');
  return repo;
}

/** The request, with the diff cut (at a line) until the message fits `budget` tokens of the model's context. */
async function fitDiff(worker: WorkerClient, spec: string, diff: string, budget: number): Promise<ChatMessage[]> {
  const message = (d: string): ChatMessage[] => [{ role: 'user', content: `${INSTRUCTION}\n\n${d}` }];
  let cut = diff;
  for (let attempt = 0; attempt < 6; attempt++) {
    const [tokens] = await worker.request(CountTokensRequest, { path: spec, texts: [message(cut)[0].content] });
    // A chat template adds a few tokens around the message.
    if (tokens + 16 <= budget) return message(cut);
    const keep = Math.floor((cut.length * (budget - 16)) / tokens / 1.1);
    cut = cut.slice(0, Math.max(0, cut.lastIndexOf('\n', keep)));
  }
  throw new Error(`the staged diff does not fit the model's context of ${budget} tokens; stage fewer changes.`);
}

// The first step of "Train My Style": a quick pick of what the adapter learns from
// (the selection, text files in a folder, files, a JSONL dataset, commit messages),
// turned into a TrainSource with a description and a suggested adapter name.

import * as path from 'path';
import * as vscode from 'vscode';
import type { TrainSource } from '../protocol';
import { commitMessages } from './git';

const TEXT_GLOB = '**/*.{txt,md,markdown,rst,tex,org,adoc}';
const EXCLUDE_GLOB = '**/{node_modules,.git,out,dist,build,.vscode}/**';
const MAX_FILES = 2000;

export interface SourceChoice {
  source: TrainSource;
  describe: string;
  suggestedName: string;
}

async function filesUnder(folder: vscode.Uri): Promise<string[]> {
  const uris = await vscode.workspace.findFiles(new vscode.RelativePattern(folder, TEXT_GLOB), EXCLUDE_GLOB, MAX_FILES);
  return uris.map((u) => u.fsPath).sort();
}

/** The selected text of `editor` as the examples. */
export function selectionChoice(editor: vscode.TextEditor): SourceChoice {
  return {
    source: { kind: 'texts', texts: [editor.document.getText(editor.selection)] },
    describe: `the selection in ${path.basename(editor.document.fileName)}`,
    suggestedName: `${path.basename(editor.document.fileName).replace(/\.[^.]+$/, '')}-style`,
  };
}

/** Text files as the examples. */
export function filesChoice(files: string[]): SourceChoice {
  return {
    source: { kind: 'files', files },
    describe: `${files.length} files`,
    suggestedName: `${path.basename(files[0]).replace(/\.[^.]+$/, '')}-style`,
  };
}

export async function pickSource(): Promise<SourceChoice | undefined> {
  type Item = vscode.QuickPickItem & { id: string };
  const editor = vscode.window.activeTextEditor;
  const selection = editor && !editor.selection.isEmpty ? editor.document.getText(editor.selection) : '';
  const items: Item[] = [];
  if (selection) items.push({ id: 'selection', label: '$(selection) Current selection', description: `${selection.length} characters` });
  items.push(
    { id: 'folder', label: '$(folder) Text files in a folder…', description: 'markdown and text files, chunked at paragraphs' },
    { id: 'files', label: '$(files) Files…', description: 'pick text, markdown or JSONL files' },
    {
      id: 'jsonl',
      label: '$(json) JSONL dataset…',
      description: '{text} · {prompt, completion} · {messages} · {prompt, chosen, rejected}',
    },
  );
  if (vscode.workspace.workspaceFolders?.length) items.push({ id: 'commits', label: '$(git-commit) Commit messages of this repository' });
  const pick = await vscode.window.showQuickPick(items, {
    title: 'Aligner: Train My Style (1/2): examples',
    placeHolder: 'What should the adapter learn from?',
  });
  if (!pick) return undefined;
  const root = vscode.workspace.workspaceFolders?.[0];
  switch (pick.id) {
    case 'selection':
      return selectionChoice(editor!);
    case 'folder': {
      const folder = await pickFolder();
      if (!folder) return undefined;
      const files = await filesUnder(folder);
      if (!files.length) throw new Error(`No text or markdown files under ${folder.fsPath}.`);
      return {
        source: { kind: 'files', files },
        describe: `${files.length} files in ${path.basename(folder.fsPath)}`,
        suggestedName: `${path.basename(folder.fsPath)}-style`,
      };
    }
    case 'files': {
      const uris = await vscode.window.showOpenDialog({
        canSelectMany: true,
        canSelectFolders: false,
        openLabel: 'Train on these',
        defaultUri: root?.uri,
      });
      if (!uris?.length) return undefined;
      const jsonl = uris.filter((u) => u.fsPath.endsWith('.jsonl'));
      if (jsonl.length === 1 && uris.length === 1) {
        return {
          source: { kind: 'jsonl', file: jsonl[0].fsPath },
          describe: path.basename(jsonl[0].fsPath),
          suggestedName: path.basename(jsonl[0].fsPath, '.jsonl'),
        };
      }
      if (jsonl.length) throw new Error('Pick either one JSONL dataset or text files, not both.');
      return filesChoice(uris.map((u) => u.fsPath));
    }
    case 'jsonl': {
      const uris = await vscode.window.showOpenDialog({
        canSelectMany: false,
        filters: { 'JSON Lines': ['jsonl'] },
        openLabel: 'Train on this dataset',
        defaultUri: root?.uri,
      });
      if (!uris?.[0]) return undefined;
      return {
        source: { kind: 'jsonl', file: uris[0].fsPath },
        describe: path.basename(uris[0].fsPath),
        suggestedName: path.basename(uris[0].fsPath, '.jsonl'),
      };
    }
    case 'commits': {
      const cwd = root!.uri.fsPath;
      const messages = await commitMessages(cwd);
      if (!messages.length) throw new Error('This repository has no commit messages to learn from.');
      return {
        source: { kind: 'texts', texts: messages, chunk: false },
        describe: `${messages.length} commit messages of ${path.basename(cwd)}`,
        suggestedName: `${path.basename(cwd)}-commits`,
      };
    }
  }
  return undefined;
}

/** Workspace folders holding text files, plus "Browse…". */
async function pickFolder(): Promise<vscode.Uri | undefined> {
  type Item = vscode.QuickPickItem & { uri?: vscode.Uri };
  const counts = new Map<string, number>();
  for (const folder of vscode.workspace.workspaceFolders ?? []) {
    for (const f of await filesUnder(folder.uri)) {
      let dir = path.dirname(f);
      while (dir.startsWith(folder.uri.fsPath)) {
        counts.set(dir, (counts.get(dir) ?? 0) + 1);
        if (dir === folder.uri.fsPath) break;
        dir = path.dirname(dir);
      }
    }
  }
  const items: Item[] = [...counts.entries()]
    .sort((a, b) => a[0].localeCompare(b[0]))
    .map(([dir, n]) => ({
      label: `$(folder) ${vscode.workspace.asRelativePath(dir, true)}`,
      description: `${n} text file${n === 1 ? '' : 's'}`,
      uri: vscode.Uri.file(dir),
    }));
  items.push({ label: '$(folder-opened) Browse…' });
  const pick = await vscode.window.showQuickPick(items, {
    title: 'Aligner: Train My Style: folder',
    placeHolder: 'Train on the text and markdown files under…',
    matchOnDescription: true,
    ignoreFocusOut: true, // a sub-step, like the name box (train.ts)
  });
  if (!pick) return undefined;
  if (pick.uri) return pick.uri;
  const uris = await vscode.window.showOpenDialog({
    canSelectFolders: true,
    canSelectFiles: false,
    canSelectMany: false,
    openLabel: 'Train on this folder',
  });
  return uris?.[0];
}

// `Aligner: Train My Style`: pick the examples (selection, files or a folder, a JSONL
// dataset, the repository's commit messages), name the adapter, train with a
// cancellable progress notification and a view with the live loss curve; the result
// lands in the adapter library and can be used in this workspace at once.

import { execFile } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { isValidAdapterName } from '../worker/adapters';
import { ErrorCodes, TrainRequest, type TrainProgress, type TrainResult, type TrainSource } from '../protocol';
import { trainingDefaults } from './config';
import type { AdapterLibrary } from './library';
import { showPage, validate, webviewOptions } from './webview';
import type { WorkerClient } from './worker';

const TEXT_GLOB = '**/*.{txt,md,markdown,rst,tex,org,adoc}';
const EXCLUDE_GLOB = '**/{node_modules,.git,out,dist,build,.vscode}/**';
const MAX_FILES = 2000;

/** The training view: progress and the live loss curve of the current (or last) run. */
export class TrainView implements vscode.Disposable {
  static readonly viewType = 'aligner.training';
  private static current: TrainView | null = null;
  private readonly disposables: vscode.Disposable[] = [];
  private ready = false;
  private backlog: unknown[] = [];
  onCancel: (() => void) | null = null;
  onUse: (() => void) | null = null;

  static show(ctx: vscode.ExtensionContext): TrainView {
    if (TrainView.current) {
      TrainView.current.panel.reveal(undefined, true);
      return TrainView.current;
    }
    const panel = vscode.window.createWebviewPanel(TrainView.viewType, 'Aligner Training', { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true }, webviewOptions(ctx.extensionUri));
    TrainView.current = new TrainView(panel, ctx);
    return TrainView.current;
  }

  static revive(panel: vscode.WebviewPanel, ctx: vscode.ExtensionContext): void {
    panel.webview.options = webviewOptions(ctx.extensionUri);
    TrainView.current?.dispose();
    TrainView.current = new TrainView(panel, ctx);
  }

  private constructor(
    private readonly panel: vscode.WebviewPanel,
    ctx: vscode.ExtensionContext,
  ) {
    showPage(panel, ctx.extensionUri, {
      title: 'Aligner Training',
      script: 'train.js',
      style: 'train.css',
      body: '<div id="app" role="main" aria-label="Aligner training"></div>',
    });
    this.disposables.push(
      panel.onDidDispose(() => this.dispose()),
      panel.webview.onDidReceiveMessage((raw) => {
        const msg = validate<{ type: 'ready' | 'cancel' | 'use' }>(raw, { ready: {}, cancel: {}, use: {} });
        if (!msg) return;
        if (msg.type === 'ready') {
          this.ready = true;
          for (const m of this.backlog.splice(0)) void this.panel.webview.postMessage(m);
        } else if (msg.type === 'cancel') this.onCancel?.();
        else if (msg.type === 'use') this.onUse?.();
      }),
    );
  }

  post(msg: unknown): void {
    if (this.ready) void this.panel.webview.postMessage(msg);
    else this.backlog.push(msg);
  }

  dispose(): void {
    if (TrainView.current === this) TrainView.current = null;
    for (const d of this.disposables.splice(0)) d.dispose();
    this.panel.dispose();
  }
}

interface SourceChoice {
  source: TrainSource;
  describe: string;
  suggestedName: string;
}

function git(cwd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('git', args, { cwd, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => (err ? reject(new Error(stderr || err.message)) : resolve(stdout))),
  );
}

async function filesUnder(folder: vscode.Uri): Promise<string[]> {
  const uris = await vscode.workspace.findFiles(new vscode.RelativePattern(folder, TEXT_GLOB), EXCLUDE_GLOB, MAX_FILES);
  return uris.map((u) => u.fsPath).sort();
}

async function pickSource(): Promise<SourceChoice | undefined> {
  type Item = vscode.QuickPickItem & { id: string };
  const editor = vscode.window.activeTextEditor;
  const selection = editor && !editor.selection.isEmpty ? editor.document.getText(editor.selection) : '';
  const items: Item[] = [];
  if (selection) items.push({ id: 'selection', label: '$(selection) Current selection', description: `${selection.length} characters` });
  items.push(
    { id: 'folder', label: '$(folder) Text files in a folder…', description: 'markdown and text files, chunked at paragraphs' },
    { id: 'files', label: '$(files) Files…', description: 'pick text, markdown or JSONL files' },
    { id: 'jsonl', label: '$(json) JSONL dataset…', description: '{text} · {prompt, completion} · {messages} · {prompt, chosen, rejected}' },
  );
  if (vscode.workspace.workspaceFolders?.length) items.push({ id: 'commits', label: '$(git-commit) Commit messages of this repository' });
  const pick = await vscode.window.showQuickPick(items, { title: 'Aligner: Train My Style (1/2): examples', placeHolder: 'What should the adapter learn from?' });
  if (!pick) return undefined;
  const root = vscode.workspace.workspaceFolders?.[0];
  switch (pick.id) {
    case 'selection':
      return {
        source: { kind: 'texts', texts: [selection] },
        describe: `the selection in ${path.basename(editor!.document.fileName)}`,
        suggestedName: `${path.basename(editor!.document.fileName).replace(/\.[^.]+$/, '')}-style`,
      };
    case 'folder': {
      const folder = await pickFolder();
      if (!folder) return undefined;
      const files = await filesUnder(folder);
      if (!files.length) throw new Error(`No text or markdown files under ${folder.fsPath}.`);
      return { source: { kind: 'files', files }, describe: `${files.length} files in ${path.basename(folder.fsPath)}`, suggestedName: `${path.basename(folder.fsPath)}-style` };
    }
    case 'files': {
      const uris = await vscode.window.showOpenDialog({ canSelectMany: true, canSelectFolders: false, openLabel: 'Train on these', defaultUri: root?.uri });
      if (!uris?.length) return undefined;
      const jsonl = uris.filter((u) => u.fsPath.endsWith('.jsonl'));
      if (jsonl.length === 1 && uris.length === 1) {
        return { source: { kind: 'jsonl', file: jsonl[0].fsPath }, describe: path.basename(jsonl[0].fsPath), suggestedName: path.basename(jsonl[0].fsPath, '.jsonl') };
      }
      if (jsonl.length) throw new Error('Pick either one JSONL dataset or text files, not both.');
      return { source: { kind: 'files', files: uris.map((u) => u.fsPath) }, describe: `${uris.length} files`, suggestedName: `${path.basename(uris[0].fsPath).replace(/\.[^.]+$/, '')}-style` };
    }
    case 'jsonl': {
      const uris = await vscode.window.showOpenDialog({ canSelectMany: false, filters: { 'JSON Lines': ['jsonl'] }, openLabel: 'Train on this dataset', defaultUri: root?.uri });
      if (!uris?.[0]) return undefined;
      return { source: { kind: 'jsonl', file: uris[0].fsPath }, describe: path.basename(uris[0].fsPath), suggestedName: path.basename(uris[0].fsPath, '.jsonl') };
    }
    case 'commits': {
      const cwd = root!.uri.fsPath;
      const out = await git(cwd, ['log', '--no-merges', '-n', '2000', '--format=%B%x00']);
      const messages = out.split('\0').map((m) => m.trim()).filter(Boolean);
      if (!messages.length) throw new Error('This repository has no commit messages to learn from.');
      return { source: { kind: 'texts', texts: messages, chunk: false }, describe: `${messages.length} commit messages of ${path.basename(cwd)}`, suggestedName: `${path.basename(cwd)}-commits` };
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
    .map(([dir, n]) => ({ label: `$(folder) ${vscode.workspace.asRelativePath(dir, true)}`, description: `${n} text file${n === 1 ? '' : 's'}`, uri: vscode.Uri.file(dir) }));
  items.push({ label: '$(folder-opened) Browse…' });
  const pick = await vscode.window.showQuickPick(items, { title: 'Aligner: Train My Style: folder', placeHolder: 'Train on the text and markdown files under…', matchOnDescription: true });
  if (!pick) return undefined;
  if (pick.uri) return pick.uri;
  const uris = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, canSelectMany: false, openLabel: 'Train on this folder' });
  return uris?.[0];
}

export async function trainMyStyle(ctx: vscode.ExtensionContext, worker: WorkerClient, library: AdapterLibrary): Promise<TrainResult | undefined> {
  let choice: SourceChoice | undefined;
  try {
    choice = await pickSource();
  } catch (err) {
    void vscode.window.showErrorMessage(`Aligner: ${(err as Error).message}`);
    return undefined;
  }
  if (!choice) return undefined;
  const outDir = library.globalDir;
  const taken = (n: string): boolean => fs.existsSync(path.join(outDir, `${n}.safetensors`));
  let suggested = choice.suggestedName.replace(/[^A-Za-z0-9._ -]/g, '-').replace(/^[^A-Za-z0-9]+/, '') || 'my-style';
  for (let i = 2; taken(suggested); i++) suggested = `${choice.suggestedName}-${i}`;
  const name = await vscode.window.showInputBox({
    title: 'Aligner: Train My Style (2/2): name',
    prompt: `Name the adapter trained on ${choice.describe}`,
    value: suggested,
    validateInput: (v) => (!isValidAdapterName(v) ? 'Use letters, digits, spaces, ".", "_" or "-".' : taken(v) ? `An adapter named "${v}" already exists.` : undefined),
  });
  if (!name) return undefined;

  let model;
  try {
    model = await worker.ensureModel();
  } catch (err) {
    void vscode.window.showErrorMessage(`Aligner: ${(err as Error).message}`);
    return undefined;
  }
  const view = TrainView.show(ctx);
  const jobId = `train-${Date.now().toString(36)}`;
  const options = trainingDefaults();
  view.post({ type: 'start', name, source: choice.describe, model: `${model.name} · ${model.device}`, options });
  const cts = new vscode.CancellationTokenSource();
  view.onCancel = () => cts.cancel();
  const crash = worker.onCrash(() => cts.cancel());

  const result = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Aligner: training "${name}"`, cancellable: true },
    async (progress, token) => {
      token.onCancellationRequested(() => cts.cancel());
      let lastPct = 0;
      const sub = worker.onProgress(jobId, (p: TrainProgress) => {
        view.post({ type: 'progress', p });
        const pct = p.totalSteps ? (100 * p.step) / p.totalSteps : 0;
        const eta = p.etaSec > 0 ? ` · ${formatEta(p.etaSec)} left` : '';
        progress.report({ increment: Math.max(0, pct - lastPct), message: `step ${p.step}/${p.totalSteps} · loss ${p.loss.toFixed(3)}${p.valLoss !== undefined ? ` · val ${p.valLoss.toFixed(3)}` : ''}${eta}` });
        lastPct = pct;
      });
      try {
        return await worker.request(TrainRequest, { jobId, name, outDir, source: choice!.source, options }, cts.token);
      } catch (err) {
        const e = err as { code?: number; message?: string };
        if (e.code === ErrorCodes.Cancelled || cts.token.isCancellationRequested) {
          view.post({ type: 'cancelled' });
          void vscode.window.showInformationMessage(`Aligner: training "${name}" was cancelled; no adapter was written.`);
        } else {
          view.post({ type: 'error', message: e.message ?? String(err) });
          void vscode.window.showErrorMessage(`Aligner: training failed: ${e.message ?? String(err)}`);
        }
        return undefined;
      } finally {
        sub.dispose();
        crash.dispose();
      }
    },
  );
  cts.dispose();
  view.onCancel = null;
  if (!result) return undefined;
  library.changed();
  view.post({ type: 'done', result });
  const use = async (): Promise<void> => {
    await library.setActive(library.settingFor(result.adapter.path));
    view.post({ type: 'used' });
  };
  view.onUse = () => void use();
  const loss = `loss ${result.summary.trainLoss?.toFixed(3) ?? '–'}${result.summary.valLoss !== null ? `, validation ${result.summary.valLoss.toFixed(3)}` : ''}`;
  void vscode.window
    .showInformationMessage(`Aligner: adapter "${name}" trained on ${result.summary.examples} examples (${loss}). Use it in this workspace?`, 'Use in This Workspace', 'Not Now')
    .then((a) => {
      if (a === 'Use in This Workspace') void use();
    });
  return result;
}

function formatEta(sec: number): string {
  if (sec < 60) return `${Math.ceil(sec)} s`;
  const m = Math.floor(sec / 60);
  return m < 60 ? `${m} min ${Math.round(sec % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

// Learning from the user's corrections: `Aligner: Refine Style from Feedback` (DPO on the chat
// panel's preference pairs, from and against the workspace's adapter, in the worker, with
// progress and cancellation in the training view), `Aligner: Export Feedback Pairs`, and
// `Aligner: Adapter History` (the versions refinements keep: revert to one).

import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { AdapterHistoryRequest, AdapterRevertRequest, RefineRequest, type AdapterVersion, type RefineResult } from '../protocol';
import { adapterSetting } from './config';
import type { AdapterLibrary } from './library';
import { versionLabel } from '../adapter/history';
import { ChatPanel } from './chat';
import { adapterName, feedbackStore } from './pairs';
import { runTrainingJob, TrainView } from './trainView';
import type { WorkerClient } from './worker';

/** One to learn from and one held out to measure on. */
const MIN_PAIRS = 2;

/**
 * The workspace's adapter file, confirmed by the user when the workspace's settings point outside the
 * workspace and the library (library.ts); an error that says what to do when there is none.
 */
async function activeAdapter(library: AdapterLibrary, what: string): Promise<string> {
  const file = await library.resolveConfirmed(adapterSetting());
  if (!file) throw new Error(`${what} works on this workspace's adapter, and none is active: train one (Train My Style) or switch to one.`);
  return file;
}

const percent = (x: number): string => `${Math.round(100 * x)}%`;

export async function refineFromFeedback(
  ctx: vscode.ExtensionContext,
  worker: WorkerClient,
  library: AdapterLibrary,
): Promise<RefineResult | undefined> {
  const file = await activeAdapter(library, 'Refine Style from Feedback');
  const name = adapterName(file)!;
  const model = await worker.ensureModel();
  const store = feedbackStore(ctx);
  const pairs = store.forAdapter(name, model.fingerprint);
  if (pairs.length < MIN_PAIRS) {
    void vscode.window.showWarningMessage(
      `Aligner: refining "${name}" needs at least ${MIN_PAIRS} preference pairs from the chat panel, and this workspace has ${pairs.length}. ` +
        'Edit an answer, regenerate one and prefer the better of the two, or rate two answers to one prompt 👍 and 👎.',
    );
    return undefined;
  }
  // The worker reads the pairs from a file of their own: new feedback while it trains changes nothing.
  const pairsFile = path.join(path.dirname(store.file), `refine-${Date.now().toString(36)}.jsonl`);
  store.exportTo(pairsFile, pairs);
  const view = TrainView.show(ctx);
  const jobId = `refine-${Date.now().toString(36)}`;
  view.post({
    type: 'start',
    name,
    source: `${pairs.length} preference pairs from the chat`,
    model: `${model.name} · ${model.device}`,
    options: { method: 'dpo' },
    refine: true,
  });
  const result = await runTrainingJob(worker, view, {
    jobId,
    title: `Aligner: refining "${name}" from ${pairs.length} pairs`,
    cancelled: `Aligner: refining "${name}" was cancelled; the adapter is unchanged.`,
    failed: 'Aligner: refining failed',
    run: (token) =>
      worker.request(RefineRequest, { jobId, adapter: file, pairs: pairsFile }, token).finally(() => fs.rmSync(pairsFile, { force: true })),
  });
  if (!result) return undefined;
  library.changed();
  view.post({ type: 'done', result });
  const acc = result.summary.preferenceAccuracy;
  const accuracy = acc
    ? ` Preference accuracy on ${result.summary.valExamples} held-out pair${result.summary.valExamples === 1 ? '' : 's'}: ${percent(acc.before)} → ${percent(acc.after)}.`
    : '';
  void vscode.window
    .showInformationMessage(`Aligner: refined "${name}" from ${pairs.length} pairs.${accuracy} The previous version is kept.`, 'Revert')
    .then((a) => {
      if (a === 'Revert')
        void revert(worker, library, file, result.previous).catch((err: Error) =>
          vscode.window.showErrorMessage(`Aligner: ${err.message}`),
        );
    });
  return result;
}

/** `Aligner: Export Feedback Pairs`: every pair of this workspace, as JSONL where the user says. */
export async function exportFeedback(ctx: vscode.ExtensionContext): Promise<void> {
  const store = feedbackStore(ctx);
  const pairs = store.all();
  if (pairs.length === 0) {
    void vscode.window.showInformationMessage(
      'Aligner: this workspace has no preference pairs yet (edit, regenerate or rate answers in the chat).',
    );
    return;
  }
  const root = vscode.workspace.workspaceFolders?.[0]?.uri;
  const uri = await vscode.window.showSaveDialog({
    title: 'Aligner: Export Feedback Pairs',
    defaultUri: root ? vscode.Uri.joinPath(root, 'aligner-feedback.jsonl') : undefined,
    filters: { 'JSON Lines': ['jsonl'] },
    saveLabel: 'Export',
  });
  if (!uri) return;
  const n = store.exportTo(uri.fsPath, pairs);
  void vscode.window.showInformationMessage(
    `Aligner: exported ${n} preference pairs to ${uri.fsPath} ({prompt, chosen, rejected}, as \`aligner refine --data\` reads them).`,
  );
}

const when = (iso: string): string => new Date(iso).toLocaleString();

function versionDetail(v: AdapterVersion): string {
  const m = v.info.metadata;
  const parts = [v.info.method || '?'];
  if (m.examples) parts.push(`${m.examples} ${v.info.method === 'dpo' ? 'pairs' : 'examples'}`);
  if (m.preference_accuracy) parts.push(`preference accuracy ${m.preference_accuracy.replace('->', '→')}`);
  if (m.val_loss) parts.push(`val ${Number(m.val_loss).toFixed(3)}`);
  if (m.date) parts.push(`trained ${m.date.slice(0, 16).replace('T', ' ')}`);
  return v.info.problem ?? parts.join(' · ');
}

/** Puts `version` back as `file`; the content it replaces becomes a version. */
async function revert(worker: WorkerClient, library: AdapterLibrary, file: string, version: AdapterVersion): Promise<void> {
  await worker.request(AdapterRevertRequest, { path: file, version: version.path });
  library.changed();
  void vscode.window.showInformationMessage(
    `Aligner: "${adapterName(file)}" is back to the version kept ${when(version.kept)}; the version it replaced is in its history.`,
  );
}

/**
 * `Aligner: Adapter History`: the versions of the workspace's adapter, newest first; the one picked
 * is compared with the current one in the chat panel, or put back.
 */
export async function adapterHistory(ctx: vscode.ExtensionContext, worker: WorkerClient, library: AdapterLibrary): Promise<void> {
  const file = await activeAdapter(library, 'Adapter History');
  const name = adapterName(file)!;
  await worker.ensureModel();
  const versions = await worker.request(AdapterHistoryRequest, { path: file });
  if (versions.length === 0) {
    void vscode.window.showInformationMessage(
      `Aligner: "${name}" has no earlier versions; each Refine Style from Feedback keeps the one it replaces.`,
    );
    return;
  }
  type Item = vscode.QuickPickItem & { version: AdapterVersion };
  const picked = await vscode.window.showQuickPick<Item>(
    versions.map((v) => ({ label: `$(history) ${when(v.kept)}`, description: v.info.method, detail: versionDetail(v), version: v })),
    {
      title: `Aligner: history of "${name}"`,
      placeHolder: 'Pick the version to revert to (the current one is kept)',
      matchOnDescription: true,
      matchOnDetail: true,
    },
  );
  if (!picked) return;
  const compare = 'Compare with the current version in the chat';
  const action = await vscode.window.showQuickPick([`$(discard) Revert to this version`, `$(split-horizontal) ${compare}`], {
    title: `Aligner: "${name}" as of ${when(picked.version.kept)}`,
    // A sub-step, like Train My Style's name box (train.ts): the focus that VS Code hands back
    // when the version pick closes must not close this one.
    ignoreFocusOut: true,
  });
  if (action?.endsWith(compare)) ChatPanel.compareWith(ctx, worker, library, picked.version.path, versionLabel(picked.version.path));
  else if (action) await revert(worker, library, file, picked.version);
}

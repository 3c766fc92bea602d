// `Aligner: Train My Style`, the training flow: pick the examples (sourcePicker.ts),
// name the adapter, train with a cancellable progress notification and the training
// view (trainView.ts); the result lands in the adapter library and can be used in
// this workspace at once.

import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { ADAPTER_NAME_RULE, freeAdapterName, isValidAdapterName, toAdapterName } from '../adapter/names';
import { ErrorCodes, TrainRequest, type TrainProgress, type TrainResult } from '../protocol';
import { formatDuration } from '../util/duration';
import { trainingDefaults } from './config';
import type { AdapterLibrary } from './library';
import { pickSource, type SourceChoice } from './sourcePicker';
import { TrainView } from './trainView';
import type { WorkerClient } from './worker';

export async function trainMyStyle(
  ctx: vscode.ExtensionContext,
  worker: WorkerClient,
  library: AdapterLibrary,
  /** The examples when the caller already knows them (the chat participant's /train); else the user picks. */
  preset?: SourceChoice,
): Promise<TrainResult | undefined> {
  let choice: SourceChoice | undefined = preset;
  try {
    choice ??= await pickSource();
  } catch (err) {
    void vscode.window.showErrorMessage(`Aligner: ${(err as Error).message}`);
    return undefined;
  }
  if (!choice) return undefined;
  const outDir = library.globalDir;
  const taken = (n: string): boolean => fs.existsSync(path.join(outDir, `${n}.safetensors`));
  const clean = toAdapterName(choice.suggestedName);
  const suggested = freeAdapterName(outDir, isValidAdapterName(clean) ? clean : 'my-style');
  const name = await vscode.window.showInputBox({
    title: 'Aligner: Train My Style (2/2): name',
    // The last step of a flow: a focus that bounces back to the panel the first step was
    // opened from (VS Code restores it when the previous pick closes) must not close it.
    ignoreFocusOut: true,
    prompt: `Name the adapter trained on ${choice.describe}`,
    value: suggested,
    validateInput: (v) =>
      !isValidAdapterName(v) ? `Use ${ADAPTER_NAME_RULE}.` : taken(v) ? `An adapter named "${v}" already exists.` : undefined,
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
        const timeLeft = p.etaSec > 0 ? formatDuration(p.etaSec) : null;
        view.post({ type: 'progress', p, timeLeft });
        const pct = p.totalSteps ? (100 * p.step) / p.totalSteps : 0;
        const eta = timeLeft ? ` · ${timeLeft} left` : '';
        progress.report({
          increment: Math.max(0, pct - lastPct),
          message: `step ${p.step}/${p.totalSteps} · loss ${p.loss.toFixed(3)}${p.valLoss !== undefined ? ` · val ${p.valLoss.toFixed(3)}` : ''}${eta}`,
        });
        lastPct = pct;
      });
      const samples = worker.onSample(jobId, (sample) => view.post({ type: 'sample', sample }));
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
        samples.dispose();
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
    .showInformationMessage(
      `Aligner: adapter "${name}" trained on ${result.summary.examples} examples (${loss}). Use it in this workspace?`,
      'Use in This Workspace',
      'Not Now',
    )
    .then((a) => {
      if (a === 'Use in This Workspace') void use();
    });
  return result;
}

// `Aligner: Train My Style`, the training flow: pick the examples (sourcePicker.ts),
// name the adapter, train with a cancellable progress notification and the training
// view (trainView.ts); the result lands in the adapter library and can be used in
// this workspace at once.

import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { ADAPTER_NAME_RULE, freeAdapterName, isValidAdapterName, toAdapterName } from '../adapter/names';
import { TrainRequest, type TrainResult } from '../protocol';
import { trainingDefaults } from './config';
import type { AdapterLibrary } from './library';
import { pickSource, type SourceChoice } from './sourcePicker';
import { runTrainingJob, TrainView } from './trainView';
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
  const result = await runTrainingJob(worker, view, {
    jobId,
    title: `Aligner: training "${name}"`,
    cancelled: `Aligner: training "${name}" was cancelled; no adapter was written.`,
    failed: 'Aligner: training failed',
    run: (token) => worker.request(TrainRequest, { jobId, name, outDir, source: choice!.source, options }, token),
  });
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

// Aligner for VS Code: activation, commands, settings and the status-bar item.

import * as vscode from 'vscode';
import { ChatPanel } from './chat';
import { writeCommitMessage } from './commitMessage';
import { InlineCompletions } from './inline';
import { AlignerChatProvider, VENDOR } from './languageModels';
import { registerParticipant } from './participant';
import { AdapterLibrary, AdapterStatusBar } from './library';
import { downloadBaseModel, selectBaseModel } from './models';
import { LocalServer } from './server';
import { adapterHistory, exportFeedback, refineFromFeedback } from './refine';
import { trainMyStyle } from './train';
import { TrainView } from './trainView';
import { WorkerClient } from './worker';

let worker: WorkerClient | null = null;

export function activate(context: vscode.ExtensionContext): void {
  worker = new WorkerClient(context);
  const w = worker;
  const library = new AdapterLibrary(context, w);
  const status = new AdapterStatusBar(library, w);
  const server = new LocalServer(context, library);
  const languageModels = new AlignerChatProvider(w, library);
  const inline = new InlineCompletions(w, library);
  context.subscriptions.push(inline, registerParticipant(context, w, library));
  context.subscriptions.push(
    w,
    library,
    status,
    server,
    languageModels,
    vscode.lm.registerLanguageModelChatProvider(VENDOR, languageModels),
  );
  void server.update();

  const command = (id: string, fn: (...args: unknown[]) => unknown): void => {
    context.subscriptions.push(
      vscode.commands.registerCommand(id, async (...args: unknown[]) => {
        try {
          return await fn(...args);
        } catch (err) {
          void vscode.window.showErrorMessage(`Aligner: ${(err as Error).message}`);
          return undefined;
        }
      }),
    );
  };
  command('aligner.openChat', () => {
    ChatPanel.show(context, w, library);
  });
  command('aligner.trainMyStyle', () => trainMyStyle(context, w, library));
  command('aligner.switchAdapter', () => library.pick());
  command('aligner.selectBaseModel', () => selectBaseModel(context));
  command('aligner.downloadBaseModel', () => downloadBaseModel(context));
  command('aligner.showWorkerLog', () => w.output.show());
  command('aligner.showTraining', () => TrainView.show(context));
  command('aligner.showServer', () => server.show());
  command('aligner.toggleInline', () => inline.toggle());
  command('aligner.writeCommitMessage', (arg) => writeCommitMessage(w, library, arg));
  command('aligner.refineFromFeedback', () => refineFromFeedback(context, w, library));
  command('aligner.exportFeedback', () => exportFeedback(context));
  command('aligner.adapterHistory', () => adapterHistory(context, w, library));

  context.subscriptions.push(
    vscode.window.registerWebviewPanelSerializer(ChatPanel.viewType, {
      deserializeWebviewPanel: async (panel) => ChatPanel.revive(panel, context, w, library),
    }),
    vscode.window.registerWebviewPanelSerializer(TrainView.viewType, {
      deserializeWebviewPanel: async (panel) => TrainView.revive(panel, context),
    }),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (['aligner.baseModel', 'aligner.device', 'aligner.quantization'].some((s) => e.affectsConfiguration(s))) w.invalidateModel();
      if (['aligner.server', 'aligner.baseModel', 'aligner.device'].some((s) => e.affectsConfiguration(s))) void server.update();
      if (e.affectsConfiguration('aligner')) {
        status.update();
        ChatPanel.refreshAdapter();
      }
    }),
    w.onModel(() => status.update()),
    library.onDidChange(() => {
      status.update();
      ChatPanel.refreshAdapter();
    }),
  );
}

export function deactivate(): Thenable<void> | undefined {
  const w = worker;
  worker = null;
  w?.dispose();
  return undefined;
}

// The training view: a webview with the progress and live loss curve of the current
// (or last) training run, and its Cancel and "Use in this workspace" buttons.

import * as vscode from 'vscode';
import { openPanel, showPage, webviewOptions } from './webview';
import { TRAIN_FROM_WEBVIEW, validate, type TrainToWebview } from './webviewMessages';

/** The training view: progress and the live loss curve of the current (or last) run. */
export class TrainView implements vscode.Disposable {
  static readonly viewType = 'aligner.training';
  private static current: TrainView | null = null;
  private readonly disposables: vscode.Disposable[] = [];
  private ready = false;
  private backlog: TrainToWebview[] = [];
  onCancel: (() => void) | null = null;
  onUse: (() => void) | null = null;

  static show(ctx: vscode.ExtensionContext): TrainView {
    if (TrainView.current) {
      TrainView.current.panel.reveal(undefined, true);
      return TrainView.current;
    }
    const panel = openPanel(ctx, TrainView.viewType, 'Aligner Training', true);
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
        const msg = validate(raw, TRAIN_FROM_WEBVIEW);
        if (!msg) return;
        if (msg.type === 'ready') {
          this.ready = true;
          for (const m of this.backlog.splice(0)) void this.panel.webview.postMessage(m);
        } else if (msg.type === 'cancel') this.onCancel?.();
        else if (msg.type === 'use') this.onUse?.();
      }),
    );
  }

  post(msg: TrainToWebview): void {
    if (this.ready) void this.panel.webview.postMessage(msg);
    else this.backlog.push(msg);
  }

  dispose(): void {
    if (TrainView.current === this) TrainView.current = null;
    for (const d of this.disposables.splice(0)) d.dispose();
    this.panel.dispose();
  }
}

// The training view: a webview with the progress and live loss curve of the current
// (or last) training run, and its Cancel and "Use in this workspace" buttons; and how a
// training job (Train My Style, Refine Style from Feedback) runs behind it.

import * as vscode from 'vscode';
import { ErrorCodes, type TrainProgress } from '../protocol';
import { formatDuration } from '../util/duration';
import { openPanel, showPage, webviewOptions } from './webview';
import { TRAIN_FROM_WEBVIEW, validate, type TrainToWebview } from './webviewMessages';
import type { WorkerClient } from './worker';

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

/** A training job in the worker, as the user sees it. */
export interface TrainingJob<R> {
  jobId: string;
  /** The progress notification's title. */
  title: string;
  /** The whole message when the job was cancelled. */
  cancelled: string;
  /** The start of the message when it failed, before its error. */
  failed: string;
  /** Sends the job's request to the worker. */
  run: (token: vscode.CancellationToken) => Promise<R>;
}

/**
 * Runs `job` behind a cancellable progress notification and `view`: its progress and samples go
 * to both, Cancel in either (or a worker crash) cancels it, and a cancel or a failure is shown to
 * the user and gives undefined.
 */
export async function runTrainingJob<R>(worker: WorkerClient, view: TrainView, job: TrainingJob<R>): Promise<R | undefined> {
  const cts = new vscode.CancellationTokenSource();
  view.onCancel = () => cts.cancel();
  const crash = worker.onCrash(() => cts.cancel());
  try {
    return await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: job.title, cancellable: true },
      async (progress, token) => {
        token.onCancellationRequested(() => cts.cancel());
        let lastPct = 0;
        const sub = worker.onProgress(job.jobId, (p: TrainProgress) => {
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
        const samples = worker.onSample(job.jobId, (sample) => view.post({ type: 'sample', sample }));
        try {
          return await job.run(cts.token);
        } catch (err) {
          const e = err as { code?: number; message?: string };
          if (e.code === ErrorCodes.Cancelled || cts.token.isCancellationRequested) {
            view.post({ type: 'cancelled' });
            void vscode.window.showInformationMessage(job.cancelled);
          } else {
            view.post({ type: 'error', message: e.message ?? String(err) });
            void vscode.window.showErrorMessage(`${job.failed}: ${e.message ?? String(err)}`);
          }
          return undefined;
        } finally {
          sub.dispose();
          samples.dispose();
        }
      },
    );
  } finally {
    crash.dispose();
    cts.dispose();
    view.onCancel = null;
  }
}

// The extension's handle on the worker process: starts it with vscode-languageclient,
// loads the configured base model on demand, restarts it after a crash (with a visible
// message) and fails in-flight requests cleanly.

import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import {
  CloseAction,
  ErrorAction,
  LanguageClient,
  State,
  TransportKind,
  type LanguageClientOptions,
  type RequestType,
  type ServerOptions,
} from 'vscode-languageclient/node';
import {
  ChatDeltaNotification,
  LoadModelRequest,
  LogNotification,
  StatusRequest,
  TrainProgressNotification,
  TrainSampleNotification,
  type ChatDelta,
  type ChatResult,
  type ModelInfo,
  type StatusResult,
  type TrainProgress,
  type TrainSample,
} from '../protocol';
import { expandHome } from '../util/paths';
import { baseModelSetting, deviceSetting, quantizationSetting } from './config';
import { GAVE_UP_MESSAGE, RestartPolicy } from './restart';

/**
 * The worker's language client, whose own errors ("couldn't create connection to server",
 * "Restarting server failed" for a worker that died while starting) go to the worker log only:
 * WorkerClient tells the user about the worker itself. VS Code toasts at most 3 new notifications
 * per 800 ms and sends the rest silently to the notification centre, so the library's toasts from a
 * worker crashing at every start hid the one that says it "will not be restarted".
 */
class WorkerLanguageClient extends LanguageClient {
  override error(message: string, data?: unknown): void {
    super.error(message, data, false);
  }
}

export class WorkerClient implements vscode.Disposable {
  readonly output: vscode.LogOutputChannel;
  private client: LanguageClient | null = null;
  private starting: Promise<LanguageClient> | null = null;
  private model: ModelInfo | null = null;
  private loading: Promise<ModelInfo> | null = null;
  private readonly restarts = new RestartPolicy();
  /** The open "was restarted" notification, if any (see onClosed). */
  private restartNotice: Thenable<void> | null = null;
  private readonly deltaListeners = new Map<string, (d: string) => void>();
  private readonly progressListeners = new Map<string, (p: TrainProgress) => void>();
  private readonly sampleListeners = new Map<string, (s: TrainSample) => void>();
  private readonly _onCrash = new vscode.EventEmitter<void>();
  private readonly _onModel = new vscode.EventEmitter<ModelInfo | null>();
  /** Fires when the worker died; in-flight requests have been (or are being) failed. */
  readonly onCrash = this._onCrash.event;
  /** Fires when a model was loaded (or dropped). */
  readonly onModel = this._onModel.event;

  constructor(private readonly context: vscode.ExtensionContext) {
    this.output = vscode.window.createOutputChannel('Aligner Worker', { log: true });
  }

  get loadedModel(): ModelInfo | null {
    return this.model;
  }

  private serverModule(): string {
    const candidates = [
      this.context.asAbsolutePath(path.join('out', 'src', 'worker', 'server.js')),
      path.join(__dirname, '..', 'worker', 'server.js'),
    ];
    return candidates.find((f) => fs.existsSync(f)) ?? candidates[0];
  }

  private async start(): Promise<LanguageClient> {
    if (this.restarts.gaveUp) throw new Error(GAVE_UP_MESSAGE);
    if (this.client && this.client.state === State.Running) return this.client;
    if (this.starting) return this.starting;
    this.starting = (async () => {
      if (!this.client) {
        const module = this.serverModule();
        const run = { module, transport: TransportKind.ipc, options: { env: { ...process.env } } };
        const serverOptions: ServerOptions = { run, debug: run };
        const clientOptions: LanguageClientOptions = {
          documentSelector: [],
          outputChannel: this.output,
          errorHandler: {
            error: () => ({ action: ErrorAction.Continue }),
            closed: () => this.onClosed(),
          },
          initializationFailedHandler: (err) => {
            this.output.error(`worker initialisation failed: ${String(err)}`);
            return false;
          },
        };
        const client = new WorkerLanguageClient('aligner', 'Aligner Worker', serverOptions, clientOptions);
        client.onNotification(ChatDeltaNotification, (d: ChatDelta) => this.deltaListeners.get(d.requestId)?.(d.delta));
        client.onNotification(TrainProgressNotification, (p: TrainProgress) => this.progressListeners.get(p.jobId)?.(p));
        client.onNotification(TrainSampleNotification, (s: TrainSample) => this.sampleListeners.get(s.jobId)?.(s));
        client.onNotification(LogNotification, (m) => {
          if (m.level === 'error') this.output.error(m.message);
          else if (m.level === 'warn') this.output.warn(m.message);
          else this.output.info(m.message);
        });
        client.onDidChangeState((e) => {
          this.output.info(`worker state ${State[e.oldState]} -> ${State[e.newState]}`);
        });
        this.client = client;
      }
      await this.client.start();
      return this.client;
    })();
    try {
      return await this.starting;
    } finally {
      this.starting = null;
    }
  }

  private onClosed(): { action: CloseAction; handled: boolean; message?: string } {
    const decision = this.restarts.crashed(Date.now());
    this.model = null;
    this.loading = null;
    this._onModel.fire(null);
    this._onCrash.fire();
    if (decision === 'give-up') {
      void vscode.window.showErrorMessage(GAVE_UP_MESSAGE, 'Show Log').then((a) => {
        if (a) this.output.show();
      });
      return { action: CloseAction.DoNotRestart, handled: true };
    }
    // One notice until it is closed, not one per crash: a worker crashing again and again would
    // otherwise fill VS Code's 3 toasts per 800 ms and hide the give-up message (above).
    this.restartNotice ??= vscode.window
      .showWarningMessage('The Aligner worker stopped unexpectedly and was restarted.', 'Show Log')
      .then((a) => {
        this.restartNotice = null;
        if (a) this.output.show();
      });
    this.output.warn('worker process exited unexpectedly; restarting');
    return { action: CloseAction.Restart, handled: true };
  }

  /** Starts the worker if needed and loads the configured base model (once). */
  async ensureModel(): Promise<ModelInfo> {
    const wanted = baseModelSetting();
    if (!wanted) {
      const pick = await vscode.window.showWarningMessage(
        'Aligner needs a base model: select a model folder or download one from Hugging Face.',
        'Select Base Model',
        'Download Base Model',
      );
      if (pick === 'Select Base Model') await vscode.commands.executeCommand('aligner.selectBaseModel');
      else if (pick === 'Download Base Model') await vscode.commands.executeCommand('aligner.downloadBaseModel');
      if (!baseModelSetting()) throw new Error('No base model selected.');
      return this.ensureModel();
    }
    const dir = resolveModelDir(wanted);
    const device = deviceSetting();
    const quantization = quantizationSetting();
    const sameStorage = quantization === 'auto' || this.model?.quantization === quantization;
    if (this.model && this.model.path === dir && (device === 'auto' || this.model.device === device) && sameStorage) return this.model;
    if (this.loading) {
      const m = await this.loading;
      if (m.path === dir) return m;
    }
    this.loading = (async () => {
      const client = await this.start();
      return vscode.window.withProgress(
        { location: vscode.ProgressLocation.Window, title: `Aligner: loading ${path.basename(dir)}` },
        async () => {
          const m = await client.sendRequest(LoadModelRequest, { path: dir, device, quantization });
          this.output.info(`model ${m.name} (${m.quantization}) loaded on ${m.device} in ${m.loadMs} ms`);
          return m;
        },
      );
    })();
    try {
      this.model = await this.loading;
      this._onModel.fire(this.model);
      return this.model;
    } finally {
      this.loading = null;
    }
  }

  /** A typed request to the (started) worker. */
  async request<P, R>(type: RequestType<P, R, void>, params: P, token?: vscode.CancellationToken): Promise<R> {
    const client = await this.start();
    return client.sendRequest(type, params, token);
  }

  /** A chat or generate request whose text deltas go to `onDelta` as they stream in. */
  async stream<P extends { requestId: string }>(
    type: RequestType<P, ChatResult, void>,
    params: P,
    onDelta: (delta: string) => void,
    token?: vscode.CancellationToken,
  ): Promise<ChatResult> {
    const sub = this.onDelta(params.requestId, onDelta);
    try {
      return await this.request(type, params, token);
    } finally {
      sub.dispose();
    }
  }

  async status(): Promise<StatusResult> {
    const client = await this.start();
    return client.sendRequest(StatusRequest);
  }

  onDelta(requestId: string, fn: (delta: string) => void): vscode.Disposable {
    this.deltaListeners.set(requestId, fn);
    return new vscode.Disposable(() => this.deltaListeners.delete(requestId));
  }

  onProgress(jobId: string, fn: (p: TrainProgress) => void): vscode.Disposable {
    this.progressListeners.set(jobId, fn);
    return new vscode.Disposable(() => this.progressListeners.delete(jobId));
  }

  onSample(jobId: string, fn: (s: TrainSample) => void): vscode.Disposable {
    this.sampleListeners.set(jobId, fn);
    return new vscode.Disposable(() => this.sampleListeners.delete(jobId));
  }

  /** Drops the loaded model so the next request loads the (new) configured one. */
  invalidateModel(): void {
    this.model = null;
    this._onModel.fire(null);
  }

  dispose(): void {
    void this.client?.stop().catch(() => undefined);
    this._onCrash.dispose();
    this._onModel.dispose();
    this.output.dispose();
  }
}

/** A base model setting is a folder path; `~` and relative paths (to the first workspace folder) are allowed. */
export function resolveModelDir(value: string): string {
  // Ollama names are resolved by the worker through the store's manifests (src/model/sources.ts).
  if (value.startsWith('ollama:')) return value;
  let v = value;
  v = expandHome(v);
  if (!path.isAbsolute(v)) {
    const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    if (root) v = path.join(root, v);
  }
  return path.resolve(v);
}

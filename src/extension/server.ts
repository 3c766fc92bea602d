// The local OpenAI-compatible server, started from the extension when
// `aligner.server.enabled` is on: the `aligner serve` command in a child process
// (so a stuck or crashed server never touches the worker or the editor), with the
// configured base model and device, the workspace and library adapter folders, and
// a random token kept in the extension's secret storage, passed in the environment.

import { fork, type ChildProcess } from 'child_process';
import { randomBytes } from 'crypto';
import * as vscode from 'vscode';
import { baseModelSetting, cfg, deviceSetting } from './config';
import type { AdapterLibrary } from './library';

const TOKEN_KEY = 'aligner.server.token';

export class LocalServer implements vscode.Disposable {
  private child: ChildProcess | null = null;
  /** The address once the child says it listens. */
  private url: string | null = null;
  private readonly output = vscode.window.createOutputChannel('Aligner Server', { log: true });
  /** Updates run one after another, so a burst of setting changes leaves one server. */
  private updating: Promise<void> = Promise.resolve();

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly library: AdapterLibrary,
  ) {}

  /** Starts, restarts or stops the server to match the settings. */
  update(): Promise<void> {
    this.updating = this.updating.then(() => this.restart()).catch((err: Error) => this.output.error(err.message));
    return this.updating;
  }

  private async restart(): Promise<void> {
    await this.stop();
    if (!cfg().get<boolean>('server.enabled', false)) return;
    const model = baseModelSetting();
    if (!model) {
      void vscode.window.showWarningMessage('The Aligner server is enabled but no base model is set (aligner.baseModel).');
      return;
    }
    const port = cfg().get<number>('server.port', 8321);
    const args = ['serve', '--model', model, '--device', deviceSetting(), '--port', String(port)];
    for (const dir of this.library.dirs()) args.push('--adapters', dir);
    const child = fork(this.context.asAbsolutePath('out/src/cli/main.js'), args, {
      env: { ...process.env, ALIGNER_SERVER_TOKEN: await this.token() },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    this.child = child;
    child.stdout!.on('data', (d: Buffer) => {
      const text = d.toString();
      this.output.info(text.trim());
      const m = / at (http:\/\/127\.0\.0\.1:\d+\/v1)/.exec(text);
      if (m && this.child === child) this.url = m[1];
    });
    child.stderr!.on('data', (d: Buffer) => this.output.warn(d.toString().trim()));
    child.on('exit', (code, signal) => {
      if (this.child !== child) return;
      this.child = null;
      this.url = null;
      this.output.error(`server stopped (${signal ?? `exit code ${code}`})`);
      void vscode.window.showErrorMessage('The Aligner server stopped; see its log.', 'Show Log').then((a) => a && this.output.show());
    });
  }

  /** The command: the address and token, with a button that copies the token. */
  async show(): Promise<void> {
    if (!this.url) {
      const enabled = cfg().get<boolean>('server.enabled', false);
      void vscode.window.showInformationMessage(
        enabled ? 'The Aligner server is starting…' : 'The Aligner server is off (setting aligner.server.enabled).',
      );
      return;
    }
    const token = await this.token();
    const pick = await vscode.window.showInformationMessage(`Aligner server: ${this.url} (token ${token})`, 'Copy Token', 'Copy Address');
    if (pick === 'Copy Token') await vscode.env.clipboard.writeText(token);
    if (pick === 'Copy Address') await vscode.env.clipboard.writeText(this.url);
  }

  private async token(): Promise<string> {
    let token = await this.context.secrets.get(TOKEN_KEY);
    if (!token) {
      token = randomBytes(24).toString('base64url');
      await this.context.secrets.store(TOKEN_KEY, token);
    }
    return token;
  }

  /** Stops the child and waits until it has exited (and so freed its port); SIGKILL after 5 s. */
  private stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    this.url = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      child.kill('SIGTERM');
    });
  }

  dispose(): void {
    void this.stop();
    this.output.dispose();
  }
}

// The chat panel: a webview in the editor area that streams answers from the base
// model with the workspace's adapter, with stop, copy / insert-at-cursor, history per
// workspace (workspaceState), an adapter picker and "compare with base model".

import * as vscode from 'vscode';
import { ChatRequest, ErrorCodes, type ChatMessage, type ChatResult } from '../protocol';
import { adapterSetting, generationDefaults } from './config';
import type { AdapterLibrary } from './library';
import { openPanel, showPage, webviewOptions } from './webview';
import { CHAT_FROM_WEBVIEW, validate, type ChatToWebview, type Column, type Turn } from './webviewMessages';
import type { WorkerClient } from './worker';

const HISTORY_KEY = 'aligner.chat.history';
const COMPARE_KEY = 'aligner.chat.compare';
const MAX_TURNS = 200;
/** Turns sent as context at most; the worker keeps those that fit the model's context. */
const CONTEXT_TURNS = 32;

export class ChatPanel implements vscode.Disposable {
  static readonly viewType = 'aligner.chat';
  private static current: ChatPanel | null = null;

  private readonly disposables: vscode.Disposable[] = [];
  private readonly inflight = new Map<string, vscode.CancellationTokenSource>();
  private lastEditor: vscode.TextEditor | undefined = vscode.window.activeTextEditor;
  private seq = 0;
  /** How many times "New chat" was pressed. */
  private clears = 0;

  static show(ctx: vscode.ExtensionContext, worker: WorkerClient, library: AdapterLibrary): ChatPanel {
    if (ChatPanel.current) {
      ChatPanel.current.panel.reveal(undefined, false);
      return ChatPanel.current;
    }
    const panel = openPanel(ctx, ChatPanel.viewType, 'Aligner Chat', false);
    ChatPanel.current = new ChatPanel(panel, ctx, worker, library);
    return ChatPanel.current;
  }

  static revive(panel: vscode.WebviewPanel, ctx: vscode.ExtensionContext, worker: WorkerClient, library: AdapterLibrary): void {
    panel.webview.options = webviewOptions(ctx.extensionUri);
    ChatPanel.current?.dispose();
    ChatPanel.current = new ChatPanel(panel, ctx, worker, library);
  }

  static refreshAdapter(): void {
    ChatPanel.current?.postAdapter();
  }

  private constructor(
    private readonly panel: vscode.WebviewPanel,
    private readonly ctx: vscode.ExtensionContext,
    private readonly worker: WorkerClient,
    private readonly library: AdapterLibrary,
  ) {
    showPage(panel, ctx.extensionUri, {
      title: 'Aligner Chat',
      script: 'chat.js',
      style: 'chat.css',
      body: '<div id="app" role="application" aria-label="Aligner chat"></div>',
    });
    this.disposables.push(
      panel.onDidDispose(() => this.dispose()),
      panel.webview.onDidReceiveMessage((m) => this.onMessage(m)),
      vscode.window.onDidChangeActiveTextEditor((e) => {
        if (e) this.lastEditor = e;
      }),
      worker.onCrash(() => this.failInflight('The Aligner worker stopped unexpectedly; it is being restarted. Send the message again.')),
      worker.onModel(() => this.postAdapter()),
    );
  }

  private get history(): Turn[] {
    return this.ctx.workspaceState.get<Turn[]>(HISTORY_KEY, []);
  }

  /** Saves a turn unless "New chat" was pressed since it was sent (`clears` then moved on). */
  private async saveTurn(turn: Turn, clears: number): Promise<void> {
    if (clears !== this.clears) return;
    const h = this.history.filter((t) => t.id !== turn.id);
    h.push(turn);
    await this.ctx.workspaceState.update(HISTORY_KEY, h.slice(-MAX_TURNS));
  }

  private post(msg: ChatToWebview): void {
    void this.panel.webview.postMessage(msg);
  }

  postAdapter(): void {
    const value = adapterSetting();
    let problem: string | undefined;
    try {
      this.library.resolve(value);
    } catch (err) {
      problem = (err as Error).message;
    }
    const m = this.worker.loadedModel;
    this.post({
      type: 'adapter',
      label: this.library.label(value),
      active: !!value,
      problem,
      model: m ? `${m.name} · ${m.device}` : 'model not loaded',
    });
  }

  private onMessage(raw: unknown): void {
    const msg = validate(raw, CHAT_FROM_WEBVIEW);
    if (!msg) {
      this.worker.output.warn(`chat panel: ignored an invalid message ${JSON.stringify(raw)?.slice(0, 200)}`);
      return;
    }
    switch (msg.type) {
      case 'ready':
        this.post({ type: 'init', history: this.history, compare: this.ctx.workspaceState.get<boolean>(COMPARE_KEY, false) });
        this.postAdapter();
        return;
      case 'send':
        if (msg.text.trim()) void this.send(msg.text, msg.compare);
        return;
      case 'stop':
        this.stop();
        return;
      case 'copy':
        void vscode.env.clipboard.writeText(msg.text).then(() => vscode.window.setStatusBarMessage('$(check) Copied', 2000));
        return;
      case 'insert':
        void this.insert(msg.text);
        return;
      case 'clear':
        this.clears++; // turns still streaming belong to the cleared chat: they are not saved
        this.stop();
        void this.ctx.workspaceState.update(HISTORY_KEY, []);
        return;
      case 'pickAdapter':
        void vscode.commands.executeCommand('aligner.switchAdapter');
        return;
      case 'setCompare':
        void this.ctx.workspaceState.update(COMPARE_KEY, msg.compare);
        return;
    }
  }

  private async insert(text: string): Promise<void> {
    const editor =
      (this.lastEditor && vscode.window.visibleTextEditors.includes(this.lastEditor) ? this.lastEditor : undefined) ??
      vscode.window.visibleTextEditors.find((e) => e.document.uri.scheme !== 'output');
    if (!editor) {
      void vscode.window.showWarningMessage('Aligner: open a text editor to insert the code into.');
      return;
    }
    await editor.edit((b) => {
      for (const sel of editor.selections) b.replace(sel, text);
    });
    await vscode.window.showTextDocument(editor.document, editor.viewColumn, false);
  }

  private stop(): void {
    for (const cts of this.inflight.values()) cts.cancel();
  }

  private failInflight(message: string): void {
    for (const [key, cts] of this.inflight) {
      const [turnId, column] = key.split('|') as [string, Column];
      this.post({ type: 'error', turnId, column, message });
      cts.dispose();
    }
    this.inflight.clear();
    this.post({ type: 'busy', busy: false });
  }

  /**
   * Earlier turns as context, then the new prompt. The worker drops the oldest turns that
   * do not fit the model's context, counting tokens; this only bounds the message size.
   */
  private conversation(prompt: string, column: Column): ChatMessage[] {
    const msgs: ChatMessage[] = [];
    for (const t of this.history.slice(-CONTEXT_TURNS)) {
      const a = t.answers[column] ?? t.answers.adapter;
      if (!a || a.error || !a.text) continue;
      msgs.push({ role: 'user', content: t.prompt }, { role: 'assistant', content: a.text });
    }
    msgs.push({ role: 'user', content: prompt });
    return msgs;
  }

  private async send(prompt: string, compare: boolean): Promise<void> {
    const turn: Turn = { id: `t${Date.now().toString(36)}${++this.seq}`, prompt, time: Date.now(), answers: {} };
    const clears = this.clears;
    const value = adapterSetting();
    let adapterFile: string | null = null;
    const columns: Column[] = compare ? ['adapter', 'base'] : ['adapter'];
    this.post({ type: 'turn', turn: { ...turn, columns, labels: { adapter: this.library.label(value), base: 'base model' } } });
    this.post({ type: 'busy', busy: true });
    try {
      adapterFile = await this.library.resolveConfirmed(value);
      await this.worker.ensureModel();
      this.postAdapter();
    } catch (err) {
      for (const c of columns) this.post({ type: 'error', turnId: turn.id, column: c, message: (err as Error).message });
      turn.answers.adapter = { text: '', adapter: value || null, error: (err as Error).message };
      await this.saveTurn(turn, clears);
      this.post({ type: 'busy', busy: false });
      return;
    }
    const run = async (column: Column): Promise<void> => {
      const adapter = column === 'base' ? null : adapterFile;
      const requestId = `${turn.id}-${column}`;
      const key = `${turn.id}|${column}`;
      const cts = new vscode.CancellationTokenSource();
      this.inflight.set(key, cts);
      let streamed = '';
      try {
        const res: ChatResult = await this.worker.stream(
          ChatRequest,
          { requestId, messages: this.conversation(prompt, column), adapter, params: generationDefaults() },
          (delta) => {
            streamed += delta;
            this.post({ type: 'delta', turnId: turn.id, column, delta });
          },
          cts.token,
        );
        turn.answers[column] = { text: res.text, adapter, finishReason: res.finishReason, ms: res.ms, tokens: res.completionTokens };
        this.post({
          type: 'done',
          turnId: turn.id,
          column,
          text: res.text,
          finishReason: res.finishReason,
          ms: res.ms,
          tokens: res.completionTokens,
        });
      } catch (err) {
        const e = err as { code?: number; message?: string };
        const cancelled = e.code === ErrorCodes.Cancelled || cts.token.isCancellationRequested;
        if (cancelled) {
          turn.answers[column] = { text: streamed, adapter, finishReason: 'cancelled' };
          this.post({ type: 'done', turnId: turn.id, column, text: streamed, finishReason: 'cancelled' });
        } else if (this.inflight.has(key)) {
          const message = e.message ?? String(err);
          turn.answers[column] = { text: streamed, adapter, error: message };
          this.post({ type: 'error', turnId: turn.id, column, message });
        } else {
          turn.answers[column] = { text: streamed, adapter, error: 'The worker stopped while answering.' };
        }
      } finally {
        this.inflight.delete(key);
        cts.dispose();
      }
    };
    await Promise.all(columns.map(run));
    await this.saveTurn(turn, clears);
    if (this.inflight.size === 0) this.post({ type: 'busy', busy: false });
  }

  dispose(): void {
    if (ChatPanel.current === this) ChatPanel.current = null;
    this.stop();
    for (const d of this.disposables.splice(0)) d.dispose();
    this.panel.dispose();
  }
}

// The chat panel: a webview in the editor area that streams answers from the base
// model with the workspace's adapter, with stop, copy / insert-at-cursor, history per
// workspace (workspaceState), an adapter picker and "compare with base model"; and
// feedback on the adapter's answers (edit, regenerate and prefer, 👍/👎), kept as
// preference pairs (pairs.ts) for Refine Style from Feedback (refine.ts).

import * as vscode from 'vscode';
import { ChatRequest, ErrorCodes, type ChatMessage, type ChatResult } from '../protocol';
import { adapterSetting, generationDefaults } from './config';
import type { AdapterLibrary } from './library';
import { openPanel, showPage, webviewOptions } from './webview';
import { versionLabel } from '../adapter/history';
import { adapterName, feedbackStore, pairsOfTurn } from './pairs';
import { CHAT_FROM_WEBVIEW, FEEDBACK_COLUMNS, validate, type Answer, type ChatToWebview, type Column, type Turn } from './webviewMessages';
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
  /** The adapter version that "Compare" answers with instead of the base model (this panel's life only). */
  private compareTarget: { file: string; label: string } | null = null;

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

  /** Opens the panel comparing the adapter's answers with an earlier version's (Adapter History). */
  static compareWith(ctx: vscode.ExtensionContext, worker: WorkerClient, library: AdapterLibrary, file: string, label: string): void {
    const panel = ChatPanel.show(ctx, worker, library);
    panel.compareTarget = { file, label };
    void ctx.workspaceState.update(COMPARE_KEY, true);
    panel.post({ type: 'compareTarget', label });
  }

  static refreshAdapter(): void {
    ChatPanel.current?.postAdapter();
    ChatPanel.current?.postPairs();
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

  /** Saves a turn where it is in the history (an older turn keeps its place); false when it is no longer there. */
  private async updateTurn(turn: Turn): Promise<boolean> {
    const h = this.history;
    const i = h.findIndex((t) => t.id === turn.id);
    if (i < 0) return false;
    h[i] = turn;
    await this.ctx.workspaceState.update(HISTORY_KEY, h);
    return true;
  }

  private labels(turn: Turn): Record<Column, string> {
    const adapter = adapterName(turn.answers.adapter?.adapter ?? null) ?? 'base model';
    const version = turn.answers.version?.adapter;
    return { adapter, base: 'base model', again: `${adapter} (regenerated)`, version: version ? versionLabel(version) : '' };
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
        this.postPairs();
        this.post({ type: 'compareTarget', label: this.compareTarget?.label ?? null });
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
      case 'rate':
        if (msg.verdict !== 'up' && msg.verdict !== 'down' && msg.verdict !== 'none') return;
        void this.feedback(msg.turnId, msg.column, (_, a) => {
          a.rating = msg.verdict === 'none' ? undefined : (msg.verdict as 'up' | 'down');
        });
        return;
      case 'edit':
        void this.feedback(msg.turnId, msg.column, (_, a) => {
          a.edited = msg.text.trim() === '' || msg.text === a.text ? undefined : msg.text;
        });
        return;
      case 'prefer':
        void this.feedback(msg.turnId, msg.column, (t) => {
          t.preferred = t.preferred === msg.column ? undefined : (msg.column as Column);
        });
        return;
      case 'regenerate':
        void this.regenerate(msg.turnId);
        return;
      case 'refine':
        void vscode.commands.executeCommand('aligner.refineFromFeedback');
        return;
      case 'compareBase':
        this.compareTarget = null;
        this.post({ type: 'compareTarget', label: null });
        return;
    }
  }

  /**
   * Applies the user's feedback to an adapter answer of a saved turn, draws the turn again and
   * replaces the turn's preference pairs with those it now makes.
   */
  private async feedback(turnId: string, column: string, change: (turn: Turn, answer: Answer) => void): Promise<void> {
    const turn = this.history.find((t) => t.id === turnId);
    const answer = FEEDBACK_COLUMNS.includes(column as Column) ? turn?.answers[column as Column] : undefined;
    if (!turn || !answer) {
      this.worker.output.warn(`chat panel: feedback on an answer that is not in the history (${turnId} ${column})`);
      return;
    }
    change(turn, answer);
    await this.updateTurn(turn);
    this.post({ type: 'update', turn, labels: this.labels(turn) });
    this.recordPairs(turn);
  }

  private recordPairs(turn: Turn): void {
    try {
      feedbackStore(this.ctx).setTurn(turn.id, pairsOfTurn(turn));
    } catch (err) {
      void vscode.window.showErrorMessage(`Aligner: the feedback was not saved: ${(err as Error).message}`);
    }
    this.postPairs();
  }

  /** The number of pairs for the active adapter, beside the panel's Refine button. */
  postPairs(): void {
    let file: string | null;
    try {
      file = this.library.resolve(adapterSetting());
    } catch {
      file = null;
    }
    const adapter = adapterName(file);
    const fingerprint = this.worker.loadedModel?.fingerprint;
    try {
      const pairs = feedbackStore(this.ctx)
        .all()
        .filter((p) => p.adapter === adapter && (!fingerprint || p.base_fingerprint === fingerprint));
      this.post({ type: 'pairs', count: pairs.length, adapter });
    } catch (err) {
      this.post({ type: 'pairs', count: 0, adapter, problem: (err as Error).message });
    }
  }

  /**
   * A second answer to a saved turn's prompt from the adapter that wrote the first (the same
   * conversation before it), shown beside it so the user can prefer one.
   */
  private async regenerate(turnId: string): Promise<void> {
    const turn = this.history.find((t) => t.id === turnId);
    const first = turn?.answers.adapter;
    if (!turn || !first || this.inflight.size > 0) return;
    const clears = this.clears;
    delete turn.answers.again;
    delete turn.preferred;
    this.post({ type: 'update', turn, labels: this.labels(turn), streaming: 'again' });
    this.post({ type: 'busy', busy: true });
    let answer: Answer;
    try {
      await this.worker.ensureModel();
      answer = await this.answer(turn.id, 'again', first.adapter, this.conversation(turn.prompt, 'adapter', turn.id));
    } catch (err) {
      answer = { text: '', adapter: first.adapter, error: (err as Error).message };
      this.post({ type: 'error', turnId: turn.id, column: 'again', message: answer.error! });
    }
    // The turn as saved now: feedback given on the first answer meanwhile is kept.
    const saved = this.history.find((t) => t.id === turnId);
    if (saved && clears === this.clears) {
      saved.answers.again = answer;
      delete saved.preferred;
      await this.updateTurn(saved);
      this.post({ type: 'update', turn: saved, labels: this.labels(saved) });
      this.recordPairs(saved);
    }
    if (this.inflight.size === 0) this.post({ type: 'busy', busy: false });
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
  private conversation(prompt: string, column: Column, before?: string): ChatMessage[] {
    const msgs: ChatMessage[] = [];
    const h = this.history;
    const end = before === undefined ? h.length : h.findIndex((t) => t.id === before);
    for (const t of h.slice(0, end < 0 ? h.length : end).slice(-CONTEXT_TURNS)) {
      // The adapter's context is what the user settled on: the preferred answer, as edited.
      const a = column === 'base' ? (t.answers.base ?? t.answers.adapter) : t.answers[t.preferred ?? 'adapter'];
      const text = a?.edited ?? a?.text;
      if (!a || a.error || !text) continue;
      msgs.push({ role: 'user', content: t.prompt }, { role: 'assistant', content: text });
    }
    msgs.push({ role: 'user', content: prompt });
    return msgs;
  }

  private async send(prompt: string, compare: boolean): Promise<void> {
    const turn: Turn = { id: `t${Date.now().toString(36)}${++this.seq}`, prompt, time: Date.now(), answers: {} };
    const clears = this.clears;
    const value = adapterSetting();
    let adapterFile: string | null = null;
    const target = this.compareTarget;
    const columns: Column[] = compare ? ['adapter', target ? 'version' : 'base'] : ['adapter'];
    const label = this.library.label(value);
    const labels = { adapter: label, base: 'base model', again: label, version: target?.label ?? '' };
    this.post({ type: 'turn', turn: { ...turn, columns, labels } });
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
      const adapter = column === 'base' ? null : column === 'version' ? target!.file : adapterFile;
      turn.answers[column] = await this.answer(turn.id, column, adapter, this.conversation(prompt, column));
    };
    await Promise.all(columns.map(run));
    await this.saveTurn(turn, clears);
    if (this.inflight.size === 0) this.post({ type: 'busy', busy: false });
  }

  /** Streams one answer into the panel's column; failures and cancellation become the answer's state. */
  private async answer(turnId: string, column: Column, adapter: string | null, messages: ChatMessage[]): Promise<Answer> {
    const requestId = `${turnId}-${column}-${++this.seq}`;
    const key = `${turnId}|${column}`;
    const cts = new vscode.CancellationTokenSource();
    this.inflight.set(key, cts);
    const fingerprint = this.worker.loadedModel?.fingerprint;
    let streamed = '';
    try {
      const res: ChatResult = await this.worker.stream(
        ChatRequest,
        { requestId, messages, adapter, params: generationDefaults() },
        (delta) => {
          streamed += delta;
          this.post({ type: 'delta', turnId, column, delta });
        },
        cts.token,
      );
      this.post({ type: 'done', turnId, column, text: res.text, finishReason: res.finishReason, ms: res.ms, tokens: res.completionTokens });
      return {
        text: res.text,
        adapter,
        finishReason: res.finishReason,
        ms: res.ms,
        tokens: res.completionTokens,
        prompt: res.prompt,
        fingerprint,
      };
    } catch (err) {
      const e = err as { code?: number; message?: string };
      const cancelled = e.code === ErrorCodes.Cancelled || cts.token.isCancellationRequested;
      if (cancelled) {
        this.post({ type: 'done', turnId, column, text: streamed, finishReason: 'cancelled' });
        return { text: streamed, adapter, finishReason: 'cancelled' };
      }
      if (this.inflight.has(key)) {
        const message = e.message ?? String(err);
        this.post({ type: 'error', turnId, column, message });
        return { text: streamed, adapter, error: message };
      }
      return { text: streamed, adapter, error: 'The worker stopped while answering.' };
    } finally {
      this.inflight.delete(key);
      cts.dispose();
    }
  }

  dispose(): void {
    if (ChatPanel.current === this) ChatPanel.current = null;
    this.stop();
    for (const d of this.disposables.splice(0)) d.dispose();
    this.panel.dispose();
  }
}

// Inline completions in the workspace's style: ghost text in prose (Markdown, plain text,
// commit messages) and in code comments, from the base model with the workspace's adapter.
// A request waits for a pause in typing, is cancelled by the next keystroke (VS Code cancels
// its token; the worker drops the job), and only runs once a base model is set.
// The status-bar item turns it on and off (aligner.inline.enabled).

import { randomUUID } from 'crypto';
import * as vscode from 'vscode';
import { DescribeModelRequest, GenerateRequest, type ModelCard } from '../protocol';
import { baseModelSetting, cfg } from './config';
import {
  COMMENT_LANGUAGES,
  INLINE_DEBOUNCE_MS,
  INLINE_PARAMS,
  inlinePrompt,
  PROSE_LANGUAGES,
  suggestion,
  writesProse,
} from './inlinePrompt';
import type { AdapterLibrary } from './library';
import { resolveModelDir, type WorkerClient } from './worker';

export class InlineCompletions implements vscode.InlineCompletionItemProvider, vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('aligner.inline', vscode.StatusBarAlignment.Right, 99);
  private readonly disposables: vscode.Disposable[] = [this.item];
  private card: Promise<ModelCard> | null = null;
  private cardFor = '';

  constructor(
    private readonly worker: WorkerClient,
    private readonly library: AdapterLibrary,
  ) {
    this.item.name = 'Aligner Inline Completions';
    this.item.command = 'aligner.toggleInline';
    this.disposables.push(
      vscode.languages.registerInlineCompletionItemProvider(
        [...PROSE_LANGUAGES, ...COMMENT_LANGUAGES].map((language) => ({ language })),
        this,
      ),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('aligner.inline') || e.affectsConfiguration('aligner.baseModel')) this.update();
      }),
    );
    this.update();
  }

  private get enabled(): boolean {
    return cfg().get<boolean>('inline.enabled', true);
  }

  update(): void {
    const on = this.enabled;
    this.item.text = on ? '$(sparkle) Inline' : '$(circle-slash) Inline';
    this.item.tooltip = on
      ? 'Aligner inline completions are on (prose and comments, in your style). Click to turn them off.'
      : 'Aligner inline completions are off. Click to turn them on.';
    this.item.accessibilityInformation = { label: `Aligner inline completions ${on ? 'on' : 'off'}` };
    if (baseModelSetting()) this.item.show();
    else this.item.hide();
  }

  async toggle(): Promise<void> {
    await cfg().update('inline.enabled', !this.enabled, vscode.ConfigurationTarget.Global);
  }

  async provideInlineCompletionItems(
    document: vscode.TextDocument,
    position: vscode.Position,
    _context: vscode.InlineCompletionContext,
    token: vscode.CancellationToken,
  ): Promise<vscode.InlineCompletionItem[] | undefined> {
    const setting = baseModelSetting();
    if (!this.enabled || !setting) return undefined;
    const line = document.lineAt(position.line).text;
    const lineBefore = line.slice(0, position.character);
    if (!writesProse(document.languageId, lineBefore)) return undefined;
    // Mid-word or with text after the cursor on its line, a continuation would be in the way.
    if (line.slice(position.character).trim() !== '') return undefined;
    if (!(await pause(INLINE_DEBOUNCE_MS, token))) return undefined;
    let adapter: string | null;
    let card: ModelCard;
    try {
      adapter = this.library.resolve();
      // The configured model (set, so never a prompt): the first suggestion waits for its load.
      await this.worker.ensureModel();
      card = await this.modelCard(resolveModelDir(setting));
    } catch (err) {
      // The status bar and the chat say what is wrong with the settings; typing must not pop up errors.
      this.worker.output.warn(`inline completion: ${(err as Error).message}`);
      return undefined;
    }
    if (token.isCancellationRequested) return undefined;
    const before = document.getText(new vscode.Range(new vscode.Position(0, 0), position));
    const after = document.getText(new vscode.Range(position, document.lineAt(document.lineCount - 1).range.end));
    try {
      const res = await this.worker.request(
        GenerateRequest,
        {
          requestId: `inline-${randomUUID()}`,
          prompt: inlinePrompt(before, after, card.fim),
          adapter,
          params: INLINE_PARAMS,
        },
        token,
      );
      const text = suggestion(res.text, lineBefore);
      if (!text || token.isCancellationRequested) return undefined;
      return [new vscode.InlineCompletionItem(text, new vscode.Range(position, position))];
    } catch (err) {
      if (!token.isCancellationRequested) this.worker.output.warn(`inline completion: ${(err as Error).message}`);
      return undefined;
    }
  }

  private modelCard(path: string): Promise<ModelCard> {
    if (!this.card || this.cardFor !== path) {
      this.cardFor = path;
      this.card = this.worker.request(DescribeModelRequest, { path });
      this.card.catch(() => (this.card = null));
    }
    return this.card;
  }

  dispose(): void {
    for (const d of this.disposables.splice(0)) d.dispose();
  }
}

/** Waits `ms`; false when the token was cancelled meanwhile (the user typed on). */
function pause(ms: number, token: vscode.CancellationToken): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      sub.dispose();
      resolve(!token.isCancellationRequested);
    }, ms);
    const sub = token.onCancellationRequested(() => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

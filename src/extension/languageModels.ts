// The Language Model API provider (vendor "aligner"): the base model and every adapter
// that fits it appear in VS Code's model picker and to any extension through
// vscode.lm.selectChatModels({ vendor: 'aligner' }), as `base+adapter` (the ids of the
// local server). The list comes from the model's files and the adapter library
// (aligner/describeModel, adapters/list), so listing never loads a model; answering does.

import { randomUUID } from 'crypto';
import * as vscode from 'vscode';
import { answerRoom } from '../generate/chat';
import {
  AdapterListRequest,
  ChatRequest,
  CountTokensRequest,
  DescribeModelRequest,
  ErrorCodes,
  type AdapterInfo,
  type ChatMessage,
} from '../protocol';
import { ApiError, samplingOptions } from '../server/openai';
import { servedModelId } from '../server/models';
import { baseModelSetting, generationDefaults } from './config';
import type { AdapterLibrary } from './library';
import { resolveModelDir, type WorkerClient } from './worker';

export const VENDOR = 'aligner';

export interface AlignerModel extends vscode.LanguageModelChatInformation {
  /** The base model as the worker loads it (a path or `ollama:NAME:TAG`). */
  readonly base: string;
  readonly fingerprint: string;
  /** The adapter file, or null for the base model alone. */
  readonly adapter: string | null;
  /**
   * Listed in the Chat view's model picker. Not in the public typings yet (the chatProvider
   * proposal), but VS Code 1.106 reads it from every provider's models; without it the models
   * reach other extensions only, and the Chat view has no model to send @aligner requests with.
   */
  readonly isUserSelectable: boolean;
  /**
   * The Chat view's default model (also not in the public typings; VS Code 1.106 reads it from
   * every provider's models). Without a default model among all providers' models the Chat
   * view's picker shows only a list cached while Copilot was signed in (chatInputPart's
   * getModels falls back to the `chat.cachedLanguageModels` storage entry), so a VS Code without
   * Copilot has no model to send any request with, and the extension host answers every
   * participant "Language model unavailable" (ExtHostChatAgents2.$invokeAgent: neither
   * userSelectedModelId nor getDefaultLanguageModel names a model). The workspace's choice is
   * the default unless Copilot Chat is installed, whose default model stays the default.
   */
  readonly isDefault: boolean;
}

/** The extension that provides VS Code's own default chat model when installed. */
const COPILOT_CHAT = 'GitHub.copilot-chat';

export class AlignerChatProvider implements vscode.LanguageModelChatProvider<AlignerModel>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeLanguageModelChatInformation = this.changed.event;
  private readonly disposables: vscode.Disposable[] = [this.changed];

  constructor(
    private readonly worker: WorkerClient,
    private readonly library: AdapterLibrary,
  ) {
    this.disposables.push(
      library.onDidChange(() => this.changed.fire()),
      vscode.extensions.onDidChange(() => this.changed.fire()),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (['aligner.baseModel', 'aligner.adapter', 'aligner.generation.maxNewTokens'].some((s) => e.affectsConfiguration(s)))
          this.changed.fire();
      }),
    );
  }

  async provideLanguageModelChatInformation(
    _options: vscode.PrepareLanguageModelChatModelOptions,
    token: vscode.CancellationToken,
  ): Promise<AlignerModel[]> {
    const setting = baseModelSetting();
    if (!setting) return [];
    const base = resolveModelDir(setting);
    try {
      const card = await this.worker.request(DescribeModelRequest, { path: base }, token);
      const adapters = await this.worker.request(AdapterListRequest, { dirs: this.library.dirs(), model: base }, token);
      const output = answerRoom(card.contextLength, generationDefaults().maxNewTokens ?? card.contextLength);
      const active = this.activeAdapter();
      const fitting = adapters.filter((a) => a.compatible);
      // The default: the workspace's adapter when it fits this model, else the base model.
      const defaultAdapter = fitting.some((a) => a.path === active) ? active : null;
      const claimDefault = !vscode.extensions.getExtension(COPILOT_CHAT);
      const model = (adapter: AdapterInfo | null): AlignerModel => ({
        id: servedModelId(card.name, adapter?.name),
        name: adapter ? `${adapter.name} · ${card.name}` : card.name,
        family: card.name,
        version: adapter?.metadata.date ?? card.fingerprint,
        detail: adapter ? 'Aligner adapter' : 'base model',
        tooltip: adapter
          ? `${card.name} with the style adapter ${adapter.path} (${adapter.tokens} prefix tokens from layer ${adapter.startLayer})`
          : `${card.name} without an adapter`,
        maxInputTokens: card.contextLength - output,
        maxOutputTokens: output,
        capabilities: { imageInput: false, toolCalling: false },
        isUserSelectable: true,
        isDefault: claimDefault && (adapter?.path ?? null) === defaultAdapter,
        base,
        fingerprint: card.fingerprint,
        adapter: adapter?.path ?? null,
      });
      // The workspace's adapter first, then the library in its folders' order, then the base model.
      fitting.sort((a, b) => Number(b.path === active) - Number(a.path === active));
      return [...fitting.map(model), model(null)];
    } catch (err) {
      this.worker.output.warn(`language models: ${(err as Error).message}`);
      return [];
    }
  }

  async provideLanguageModelChatResponse(
    model: AlignerModel,
    messages: readonly vscode.LanguageModelChatRequestMessage[],
    options: vscode.ProvideLanguageModelChatResponseOptions,
    progress: vscode.Progress<vscode.LanguageModelResponsePart>,
    token: vscode.CancellationToken,
  ): Promise<void> {
    let sampling;
    try {
      sampling = samplingOptions(options.modelOptions ?? {});
    } catch (err) {
      throw new Error(`Aligner: modelOptions.${(err as ApiError).message}`, { cause: err });
    }
    const loaded = await this.worker.ensureModel();
    if (loaded.fingerprint !== model.fingerprint)
      throw vscode.LanguageModelError.NotFound(
        `${model.id} is not the configured base model any more (aligner.baseModel); pick a model again.`,
      );
    const params = { ...generationDefaults(), ...defined(sampling) };
    params.maxNewTokens = Math.min(params.maxNewTokens ?? model.maxOutputTokens, model.maxOutputTokens);
    try {
      await this.worker.stream(
        ChatRequest,
        { requestId: `lm-${randomUUID()}`, messages: chatMessages(messages), adapter: model.adapter, params },
        (delta) => progress.report(new vscode.LanguageModelTextPart(delta)),
        token,
      );
    } catch (err) {
      if ((err as { code?: number }).code === ErrorCodes.Cancelled || token.isCancellationRequested) throw new vscode.CancellationError();
      throw err;
    }
  }

  async provideTokenCount(
    model: AlignerModel,
    text: string | vscode.LanguageModelChatRequestMessage,
    token: vscode.CancellationToken,
  ): Promise<number> {
    const [count] = await this.worker.request(
      CountTokensRequest,
      { path: model.base, texts: [typeof text === 'string' ? text : textOf(text)] },
      token,
    );
    return count;
  }

  /** The adapter file of the workspace's setting, or null (none, or it names nothing). */
  private activeAdapter(): string | null {
    try {
      return this.library.resolve();
    } catch {
      return null;
    }
  }

  dispose(): void {
    for (const d of this.disposables.splice(0)) d.dispose();
  }
}

/** The text parts of a message; tool calls and data parts have no place in a plain text model's prompt. */
function textOf(m: vscode.LanguageModelChatRequestMessage): string {
  return m.content
    .filter((p): p is vscode.LanguageModelTextPart => p instanceof vscode.LanguageModelTextPart)
    .map((p) => p.value)
    .join('');
}

function chatMessages(messages: readonly vscode.LanguageModelChatRequestMessage[]): ChatMessage[] {
  const out = messages
    .map((m): ChatMessage => ({
      role: m.role === vscode.LanguageModelChatMessageRole.Assistant ? 'assistant' : 'user',
      content: textOf(m),
    }))
    .filter((m) => m.content !== '');
  if (!out.some((m) => m.role === 'user')) throw new Error('Aligner: the request has no user message with text.');
  return out;
}

/** The fields that are set: an option left out keeps the setting's value. */
function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

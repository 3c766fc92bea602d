// The @aligner chat participant in VS Code's Chat view: answers with the base model and the
// workspace's adapter, streamed and cancellable, with the conversation's earlier @aligner
// turns as context. `/style NAME question` answers with another adapter for one request,
// `/compare` adds the base model's answer below, `/train` starts Train My Style on the
// referenced files (#file) or the editor's selection.

import { randomUUID } from 'crypto';
import * as vscode from 'vscode';
import { ChatRequest, ErrorCodes, type ChatMessage } from '../protocol';
import { generationDefaults } from './config';
import type { AdapterLibrary } from './library';
import { filesChoice, selectionChoice } from './sourcePicker';
import { trainMyStyle } from './train';
import type { WorkerClient } from './worker';

export const PARTICIPANT_ID = 'aligner.aligner';

export function registerParticipant(ctx: vscode.ExtensionContext, worker: WorkerClient, library: AdapterLibrary): vscode.Disposable {
  const participant = vscode.chat.createChatParticipant(PARTICIPANT_ID, (request, context, stream, token) =>
    answer(ctx, worker, library, request, context, stream, token),
  );
  participant.iconPath = vscode.Uri.joinPath(ctx.extensionUri, 'media', 'icon.png');
  return participant;
}

async function answer(
  ctx: vscode.ExtensionContext,
  worker: WorkerClient,
  library: AdapterLibrary,
  request: vscode.ChatRequest,
  context: vscode.ChatContext,
  stream: vscode.ChatResponseStream,
  token: vscode.CancellationToken,
): Promise<vscode.ChatResult> {
  try {
    if (request.command === 'train') return await train(ctx, worker, library, request, stream);
    let prompt = request.prompt;
    let label: string;
    let adapter: string | null;
    if (request.command === 'style') {
      const [name, ...rest] = prompt.trim().split(/\s+/);
      if (!name) return fail('Name the adapter: `/style NAME your question`.');
      adapter = library.resolve(name);
      label = library.label(name);
      prompt = rest.join(' ');
    } else {
      adapter = await library.resolveConfirmed();
      label = library.label();
    }
    if (!prompt.trim()) return fail('Ask something after the command.');
    await worker.ensureModel();
    const messages = [...history(context), { role: 'user' as const, content: prompt }];
    if (request.command === 'compare') stream.markdown(`**${label}**\n\n`);
    await generate(worker, messages, adapter, stream, token);
    if (request.command === 'compare' && !token.isCancellationRequested) {
      stream.markdown('\n\n---\n\n**Base model**\n\n');
      await generate(worker, messages, null, stream, token);
    }
    return { metadata: { adapter: label } };
  } catch (err) {
    if (token.isCancellationRequested || (err as { code?: number }).code === ErrorCodes.Cancelled) return {};
    return fail((err as Error).message);
  }
}

async function generate(
  worker: WorkerClient,
  messages: ChatMessage[],
  adapter: string | null,
  stream: vscode.ChatResponseStream,
  token: vscode.CancellationToken,
): Promise<void> {
  await worker.stream(
    ChatRequest,
    { requestId: `participant-${randomUUID()}`, messages, adapter, params: generationDefaults() },
    (delta) => stream.markdown(delta),
    token,
  );
}

/** Earlier @aligner turns of this conversation, as the worker's messages (the worker keeps those that fit). */
function history(context: vscode.ChatContext): ChatMessage[] {
  const out: ChatMessage[] = [];
  for (const turn of context.history) {
    if (turn instanceof vscode.ChatRequestTurn && !turn.command) out.push({ role: 'user', content: turn.prompt });
    else if (turn instanceof vscode.ChatResponseTurn && !turn.command) {
      const text = turn.response
        .filter((p): p is vscode.ChatResponseMarkdownPart => p instanceof vscode.ChatResponseMarkdownPart)
        .map((p) => p.value.value)
        .join('');
      if (text && out.at(-1)?.role === 'user') out.push({ role: 'assistant', content: text });
    }
  }
  // A question whose answer failed or was cancelled is left out with it.
  return out.at(-1)?.role === 'user' ? out.slice(0, -1) : out;
}

/** /train: the referenced files (#file:…), else the active editor's selection. */
async function train(
  ctx: vscode.ExtensionContext,
  worker: WorkerClient,
  library: AdapterLibrary,
  request: vscode.ChatRequest,
  stream: vscode.ChatResponseStream,
): Promise<vscode.ChatResult> {
  const files = request.references.map((r) => r.value).filter((v): v is vscode.Uri => v instanceof vscode.Uri && v.scheme === 'file');
  const editor = vscode.window.activeTextEditor;
  const choice = files.length
    ? filesChoice(files.map((u) => u.fsPath))
    : editor && !editor.selection.isEmpty
      ? selectionChoice(editor)
      : undefined;
  if (!choice) return fail('Reference the files to learn from (`#file:…`) or select text in an editor, then `/train` again.');
  stream.progress(`Training on ${choice.describe}…`);
  const result = await trainMyStyle(ctx, worker, library, choice);
  if (!result) return fail('Training was cancelled.');
  stream.markdown(`Trained the adapter **${result.adapter.name}** on ${choice.describe}.`);
  return { metadata: { adapter: result.adapter.name } };
}

function fail(message: string): vscode.ChatResult {
  return { errorDetails: { message } };
}

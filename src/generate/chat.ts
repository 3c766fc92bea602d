// Turns a conversation into prompt token ids for generation, dropping the oldest
// turns that do not fit the model's context.

import type { BaseModel, ChatMessage } from '../model/types';
import { checkPrompt, PromptError } from './sequence';

/**
 * With a chat template: the rendered conversation plus the generation prompt
 * (the template writes its own BOS, so none is added). Without one the model
 * is a plain completion model (stories260K is one), so the last user message
 * is continued as text.
 */
export function chatPromptIds(model: BaseModel, messages: ChatMessage[]): number[] {
  return chatPrompt(model, messages).ids;
}

/** chatPromptIds, with the text those ids encode (what a preference pair records as its prompt). */
export function chatPrompt(model: BaseModel, messages: ChatMessage[]): { text: string; ids: number[] } {
  if (messages.length === 0) throw new PromptError('the conversation is empty');
  const rendered = model.tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true });
  if (rendered !== null) return { text: rendered, ids: model.tokenizer.encode(rendered, { addSpecialTokens: false }) };
  const last = [...messages].reverse().find((m) => m.role === 'user');
  if (!last) throw new PromptError('the conversation has no user message');
  return { text: last.content, ids: model.tokenizer.encode(last.content) };
}

/** The tokens of a context of `contextLength` kept for an answer of up to `maxNewTokens`: at least 1, at most half. */
export function answerRoom(contextLength: number, maxNewTokens: number): number {
  return Math.max(1, Math.min(maxNewTokens, Math.floor(contextLength / 2)));
}

/**
 * The prompt ids of the longest recent part of the conversation that leaves `reserve`
 * tokens of the context for the answer: system messages stay, the oldest other messages
 * go first (whole turns), and the last message always stays (a PromptError when it alone is too long).
 * Counted in tokens, as the model sees them.
 */
export function fitConversation(
  model: BaseModel,
  messages: ChatMessage[],
  reserve: number,
): { ids: number[]; text: string; dropped: number } {
  const room = model.config.maxPositions - answerRoom(model.config.maxPositions, reserve);
  const system = messages.filter((m) => m.role === 'system');
  const rest = messages.filter((m) => m.role !== 'system');
  for (let first = 0; first < rest.length - 1; first++) {
    if (rest[first].role !== 'user') continue; // templates expect a conversation to open with the user
    const prompt = chatPrompt(model, [...system, ...rest.slice(first)]);
    if (prompt.ids.length <= room) return { ...prompt, dropped: first };
  }
  const prompt = chatPrompt(model, [...system, ...rest.slice(-1)]);
  checkPrompt(model, prompt.ids);
  return { ...prompt, dropped: rest.length - 1 };
}

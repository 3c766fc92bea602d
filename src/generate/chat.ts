// Turns a conversation into prompt token ids for generation.

import type { BaseModel, ChatMessage } from '../model/types';

/**
 * With a chat template: the rendered conversation plus the generation prompt
 * (the template writes its own BOS, so none is added). Without one the model
 * is a plain completion model (stories260K is one), so the last user message
 * is continued as text.
 */
export function chatPromptIds(model: BaseModel, messages: ChatMessage[]): number[] {
  if (messages.length === 0) throw new Error('the conversation is empty');
  const rendered = model.tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true });
  if (rendered !== null) return model.tokenizer.encode(rendered, { addSpecialTokens: false });
  const last = [...messages].reverse().find((m) => m.role === 'user');
  if (!last) throw new Error('the conversation has no user message');
  return model.tokenizer.encode(last.content);
}

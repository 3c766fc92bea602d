// The training record shapes, following Hugging Face TRL's dataset conventions (SPEC §5).

import type { ChatMessage } from '../model/types';

export type RecordForm = 'text' | 'prompt-completion' | 'messages' | 'preference';

export interface TextRecord {
  text: string;
}

export interface PromptCompletionRecord {
  prompt: string;
  completion: string;
}

export interface MessagesRecord {
  messages: ChatMessage[];
}

export interface PreferenceRecord {
  prompt: string;
  chosen: string;
  rejected: string;
}

/** Records of one form, as read from one source. */
export type RecordSet =
  | { form: 'text'; records: TextRecord[]; file: string }
  | { form: 'prompt-completion'; records: PromptCompletionRecord[]; file: string }
  | { form: 'messages'; records: MessagesRecord[]; file: string }
  | { form: 'preference'; records: PreferenceRecord[]; file: string };

export type SftRecord = TextRecord | PromptCompletionRecord | MessagesRecord;

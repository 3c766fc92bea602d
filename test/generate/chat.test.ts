// Chat prompts: the model's chat template when it has one, else a continuation of the last user message.

import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { chatPromptIds } from '../../src/generate/chat';
import { loadModel } from '../../src/model/load';
import { copyOfStories, STORIES } from '../model/paths';

const TEMPLATE =
  "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";

test('with a chat template: the rendered conversation with the generation prompt, BOS from the template', async () => {
  const dir = copyOfStories();
  const file = path.join(dir, 'tokenizer_config.json');
  fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(fs.readFileSync(file, 'utf8')), chat_template: TEMPLATE }));
  const model = await loadModel(dir);
  const messages = [
    { role: 'user' as const, content: 'Tell me a story.' },
    { role: 'assistant' as const, content: 'Once upon a time.' },
    { role: 'user' as const, content: 'Another one!' },
  ];
  const ids = chatPromptIds(model, messages);
  assert.equal(ids.filter((t) => t === 1).length, 1, 'exactly one BOS');
  assert.equal(
    model.tokenizer.decode(ids, { skipSpecialTokens: true }),
    '<|user|>Tell me a story.\n<|assistant|>Once upon a time.\n<|user|>Another one!\n<|assistant|>',
  );
});

test('without one: the last user message is continued as text', async () => {
  const model = await loadModel(STORIES);
  const ids = chatPromptIds(model, [
    { role: 'user', content: 'Lily and Tom' },
    { role: 'assistant', content: 'went home.' },
    { role: 'user', content: 'Once upon a time' },
  ]);
  assert.deepEqual(ids, [1, 403, 407, 261, 378]);
  assert.throws(() => chatPromptIds(model, []), /the conversation is empty/);
});

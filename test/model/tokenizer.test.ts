import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { HfTokenizer } from '../../src/model/tokenizer';
import { golden, STORIES, tempDir } from './paths';

const tokenizer = HfTokenizer.fromFolder(STORIES);

test('encodes like llama2.c, BOS first', () => {
  assert.equal(tokenizer.vocabSize, 512);
  assert.deepEqual(tokenizer.encode('Once upon a time'), [1, 403, 407, 261, 378]);
  assert.deepEqual(tokenizer.encode('Lily and Tom went to the park'), [1, 317, 269, 274, 287, 263, 377, 267, 265, 282, 295, 433]);
  assert.deepEqual(tokenizer.encode('Once upon a time', { addSpecialTokens: false }), [403, 407, 261, 378]);
});

test('decodes the golden greedy outputs exactly (no clean-up of spaces)', () => {
  for (const p of golden().prompts) {
    assert.equal(tokenizer.decode([...p.prompt_ids, ...p.generated_ids], { skipSpecialTokens: true }), p.text);
  }
  assert.equal(tokenizer.decode([1, 403], { skipSpecialTokens: false }), '<s> Once');
});

test('has no chat template when tokenizer_config.json has none', () => {
  assert.equal(tokenizer.applyChatTemplate([{ role: 'user', content: 'hi' }]), null);
});

test('renders a chat template from tokenizer_config.json, string or named list', () => {
  const dir = tempDir();
  fs.copyFileSync(path.join(STORIES, 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
  const template =
    '{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}{{ eos_token }}{% endfor %}' +
    '{% if add_generation_prompt %}[assistant] {% endif %}';
  const config = JSON.parse(fs.readFileSync(path.join(STORIES, 'tokenizer_config.json'), 'utf8'));
  const messages = [
    { role: 'system' as const, content: 'Be brief.' },
    { role: 'user' as const, content: 'Hi' },
  ];

  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ ...config, chat_template: template }));
  const withString = HfTokenizer.fromFolder(dir);
  assert.equal(withString.applyChatTemplate(messages, { addGenerationPrompt: true }), '<s>[system] Be brief.</s>[user] Hi</s>[assistant] ');
  assert.equal(withString.applyChatTemplate(messages), '<s>[system] Be brief.</s>[user] Hi</s>');

  const named = [
    { name: 'tool_use', template: 'tools' },
    { name: 'default', template },
  ];
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ ...config, chat_template: named }));
  assert.equal(HfTokenizer.fromFolder(dir).applyChatTemplate(messages), '<s>[system] Be brief.</s>[user] Hi</s>');
});

// stories260K's golden greedy continuations (its README), reproduced exactly
// from the Hugging Face folder (rotate-half layout) and from the llama2.c
// import (interleaved layout).

import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { Engine } from '../../src/engine/engine';
import { generate } from '../../src/generate/generate';
import { importLlama2c } from '../../src/model/llama2c';
import { loadModel } from '../../src/model/load';
import type { BaseModel } from '../../src/model/types';
import { golden, LLAMA2C_BIN, LLAMA2C_TOKENIZER, STORIES } from '../model/paths';

async function checkGolden(model: BaseModel): Promise<void> {
  const engine = await Engine.create(model);
  try {
    for (const g of golden().prompts) {
      assert.deepEqual(model.tokenizer.encode(g.prompt), g.prompt_ids);
      let streamed = '';
      const out = await generate(engine, g.prompt_ids, null, {
        maxNewTokens: 200,
        temperature: 0,
        stopAtEos: false,
        onText: (d) => (streamed += d),
      });
      assert.deepEqual(out.ids, g.generated_ids, `greedy ids for "${g.prompt}"`);
      assert.equal(out.finishReason, 'length');
      assert.equal(model.tokenizer.decode([...g.prompt_ids, ...out.ids], { skipSpecialTokens: true }), g.text);
      assert.equal(g.prompt + streamed, g.text, 'streamed deltas concatenate to the golden text');
    }
  } finally {
    await engine.dispose();
  }
}

test('golden greedy outputs from the Hugging Face folder', async () => {
  await checkGolden(await loadModel(STORIES));
});

test('golden greedy outputs from the llama2.c import', async () => {
  await checkGolden(await importLlama2c(LLAMA2C_BIN, LLAMA2C_TOKENIZER));
});

// Training defaults: the one place the trainer (and so the CLI and the worker)
// and the extension's settings (package.json, checked by
// test/extension/settings.test.ts) take them from. SPEC §1 lets the product's
// own values differ from the paper's reference ones.

import { DEFAULT_START_LAYER } from '../adapter/new';

export const TRAIN_DEFAULTS = {
  /** Prefix vectors N: "auto" is ceil(4096 / d) clamped to [1, 64] (src/adapter/new.ts). */
  tokens: 'auto' as number | 'auto',
  startLayer: DEFAULT_START_LAYER,
  epochs: 3,
  /** AdamW learning rate per method (the paper's: SFT 9e-3, DPO 1e-4). */
  lr: { sft: 9e-3, dpo: 1e-4 },
  weightDecay: 0.02,
  batchSize: 8,
  maxLen: 512,
  /** Gradient-norm clip; 0 turns it off. */
  clip: 1,
  /** DPO β. */
  beta: 0.1,
  schedule: 'cosine' as 'cosine' | 'constant',
  seed: 0,
};

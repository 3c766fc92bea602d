// Training defaults: the one place the trainer (and so the CLI and the worker)
// and the extension's settings (package.json, checked by
// test/extension/settings.test.ts) take them from. SPEC §1 lets the product's
// own values differ from the paper's reference ones, which were tuned for 7B
// models and N = 1 (SFT lr 9e-3): on stories260K, N = 64 at that rate lowers the
// loss but no sample shows the style. Ours were chosen with `npm run stylebench`
// (issue 11; README, "How the training defaults were chosen"): at lr 0.1, batch
// 16, 2 epochs with 10% warm-up and cosine decay, 10 prefix tokens reproduce the
// PyTorch reference's N = 10 row (shout 0.52 vs 0.56), 32 tokens (2,072
// parameters on stories260K) show every style more, and 6 epochs more again
// (mean adherence over seeds 0-2: shout 0.69, zoe 0.73, moral 0.84).

import { DEFAULT_START_LAYER } from '../adapter/new';

export const TRAIN_DEFAULTS = {
  /** Prefix vectors N; "auto" (ceil(4096 / d) clamped to [1, 64], src/adapter/new.ts) stays available. */
  tokens: 32 as number | 'auto',
  startLayer: DEFAULT_START_LAYER,
  /** 6, not 2: lower validation NLL on every style and seed, moral's adherence +0.27 to +0.36. */
  epochs: 6,
  /**
   * AdamW learning rate per method (the paper's: SFT 9e-3, DPO 1e-4). DPO from 64 shout
   * corrections on stories260K (test/cli/refine.test.ts, 12 steps): at 1e-4 the "!" share of
   * samples moves by 0.003; from a fresh adapter 0.01 moves it 0.008 and 0.03 by 0.17, from a
   * trained shout adapter 0.01 by 0.33 while 0.03 wrecks it (validation NLL +0.44).
   */
  lr: { sft: 0.1, dpo: 0.01 },
  weightDecay: 0.02,
  batchSize: 16,
  maxLen: 512,
  /** Linear warm-up over this fraction of the steps (at most 100), then the schedule. */
  warmupFraction: 0.1,
  /** Gradient-norm clip; 0 turns it off. */
  clip: 1,
  /** DPO β. */
  beta: 0.1,
  /**
   * Weight of the chosen answers' token-mean NLL added to the DPO loss (RPO); 0 = SPEC's plain
   * DPO. Opt-in: it keeps DPO stable at higher rates (plain DPO at lr 0.1 from the base: validation
   * NLL +1.3; with alpha 10: +0.09 for a larger gain in style).
   */
  rpoAlpha: 0,
  /**
   * `aligner refine` (DPO from corrections, the adapter as start and reference): what the flags
   * leave out takes these. DPO (β above) plus editWeight × the (1 − p)-weighted NLL of the tokens
   * the corrections changed, plus anchorWeight × the KL divergence from the reference's
   * anchorTop likeliest next tokens over every other answer token: the corrections' unedited
   * ones and anchorAnswers answers per pair that the adapter writes itself (src/train/corrections.ts).
   * Measured on test/cli/refine.test.ts's protocol (64 simulated shout corrections of
   * stories260K's answers, from a briefly trained shout adapter; mean "!" share of 4 × 50 samples,
   * validation NLL on unstyled stories; README, "Refining from corrections"): +0.30 for +0.015.
   * The previous default, DPO + 30 × the chosen answers' NLL (RPO) + 30 × the NLL of the anchor
   * answers, paid +0.031 for as much, 0.013 of it away from the stories' "." (refinesweep.js).
   */
  refine: { lr: 0.1, epochs: 2, rpoAlpha: 0, anchorWeight: 100, editWeight: 3, anchorAnswers: 4, anchorTop: 8 },
  schedule: 'cosine' as 'cosine' | 'constant',
  seed: 0,
};

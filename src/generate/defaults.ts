// Sampling defaults: used when neither the caller nor the model's
// generation_config.json sets a value. The one place for them: generate(), the
// CLI, the worker and the extension's settings (package.json, checked by
// test/extension/settings.test.ts) all read these.

export const GENERATION_DEFAULTS = {
  maxNewTokens: 256,
  temperature: 0.7,
  topP: 0.9,
} as const;

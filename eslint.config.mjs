// ESLint for the whole repository: typescript-eslint's recommended rules on the
// TypeScript, the recommended JavaScript rules on the webview scripts and the
// build scripts. Formatting is Prettier's job (.prettierrc.json), not ESLint's.

import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// The globals each kind of script may use (the `globals` package is not a dependency).
const BROWSER = Object.fromEntries(
  [
    'window',
    'document',
    'navigator',
    'console',
    'setTimeout',
    'clearTimeout',
    'requestAnimationFrame',
    'HTMLElement',
    'Node',
    'acquireVsCodeApi',
  ].map((name) => [name, 'readonly']),
);
const NODE = Object.fromEntries(['process', 'console', 'Buffer', 'URL', 'setTimeout', 'clearTimeout'].map((name) => [name, 'readonly']));

export default tseslint.config(
  { ignores: ['out/**', 'dist/**', 'node_modules/**', '.cache/**', '.test-tmp/**'] },
  js.configs.recommended,
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommended],
    rules: {
      // `_name` marks a parameter a signature needs but the body does not use.
      // `let { state, logits } = …` where only one of them is reassigned later is fine.
      'prefer-const': ['error', { destructuring: 'all' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    files: ['media/webview/**/*.js'],
    languageOptions: { globals: BROWSER },
  },
  {
    files: ['**/*.mjs', 'scripts/**/*.js'],
    languageOptions: { globals: NODE },
  },
);

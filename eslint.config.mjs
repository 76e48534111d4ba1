// Lint of the TypeScript (src/, test/, bench/): the recommended rules of ESLint and
// typescript-eslint, plus the project's own: functions stay short (a longer one says why in an
// eslint-disable comment), no unused names. Formatting is prettier's (make lint checks both).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'build/', 'bpf/.output/', 'bench/out/', 'deploy/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-control-regex': 'off',
      'no-empty': ['error', { allowEmptyCatch: true }],
      'max-lines-per-function': ['error', { max: 60, skipBlankLines: true, skipComments: true, IIFEs: true }],
    },
  },
  {
    // Bench procedures: one measured run, top to bottom, is easier to audit in one piece.
    files: ['bench/**/*.ts'],
    rules: { 'max-lines-per-function': ['error', { max: 140, skipBlankLines: true, skipComments: true, IIFEs: true }] },
  },
  {
    // Tests: a describe() block holds its cases; a fixture may be typed loosely.
    files: ['test/**/*.ts'],
    rules: {
      'max-lines-per-function': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    // Scripts run by node as they are (the VM tests' drivers and in-VM checks).
    files: ['**/*.mjs'],
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', Buffer: 'readonly', URL: 'readonly' },
    },
    rules: { 'no-empty': ['error', { allowEmptyCatch: true }] },
  },
  {
    // The console's page: plain ES modules run by the browser (no build step).
    files: ['src/console/page/*.js'],
    languageOptions: {
      sourceType: 'module',
      globals: Object.fromEntries(
        'window document location fetch sessionStorage URLSearchParams AbortController TextDecoderStream setTimeout setInterval clearInterval'
          .split(' ')
          .map((g) => [g, 'readonly']),
      ),
    },
  },
  {
    files: ['bin/*', '**/*.js', '**/*.cjs'],
    ignores: ['src/console/page/*.js'],
    languageOptions: { globals: { require: 'readonly', module: 'writable', process: 'readonly', __dirname: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);

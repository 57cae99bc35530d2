/**
 * The lint gate (`npm run lint`, run by `npm test` and so by CI): ESLint's and typescript-eslint's
 * recommended rules with type information, the rules of hooks for the React client, and disable
 * comments that must say why. Formatting is Prettier's job (`prettier --check .` in the same script),
 * so no stylistic rule is on here except a hard line-length ceiling for what Prettier cannot wrap
 * (strings, comments).
 */
import js from '@eslint/js';
import comments from '@eslint-community/eslint-plugin-eslint-comments/configs';
import reactHooks from 'eslint-plugin-react-hooks';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: ['dist/', 'data/', '.cache/', 'models/', 'eval-results/', 'test-artifacts/', '**/node_modules/'],
  },
  {
    linterOptions: { reportUnusedDisableDirectives: 'error', reportUnusedInlineConfigs: 'error' },
  },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  comments.recommended,
  {
    languageOptions: {
      globals: { ...globals.node },
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Every disable comment says why: `// eslint-disable-next-line rule -- the reason`.
      '@eslint-community/eslint-comments/require-description': 'error',
      '@eslint-community/eslint-comments/disable-enable-pair': ['error', { allowWholeFile: true }],
      // Prettier wraps code at 160 columns; strings and comments, which it leaves alone, stop at 200.
      // A regular expression or a URL cannot be split.
      'max-len': ['error', { code: 200, tabWidth: 2, ignoreRegExpLiterals: true, ignoreUrls: true }],
      // `_name` marks a binding kept on purpose (a rest sibling dropped from an object, a parameter an
      // interface requires).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
      // The code indexes arrays with `a[i]!` as if noUncheckedIndexedAccess were on; with it off, this
      // rule would call each of those ~850 assertions unnecessary.
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
      // Callbacks are declared as interface methods (`emit(e): void`) and destructured; none uses `this`.
      '@typescript-eslint/unbound-method': 'off',
      // An async method that does not await still turns a throw into a rejection, which the Jobs and
      // NodeDefinition interfaces rely on.
      '@typescript-eslint/require-await': 'off',
      // String(value) is how unknown parameter values are shown; after narrowing, `{}` is not an object.
      '@typescript-eslint/no-base-to-string': 'off',
    },
  },
  {
    // Tests read JSON answers and event payloads as `any` and assert on them field by field.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    files: ['client/src/**/*.{ts,tsx}'],
    languageOptions: { globals: { ...globals.browser } },
    // The rules of hooks. The React Compiler's rules (recommended-latest: refs, set-state-in-effect, ...)
    // are left off: the client is not built with the compiler.
    plugins: { 'react-hooks': reactHooks },
    rules: {
      'react-hooks/rules-of-hooks': 'error',
      'react-hooks/exhaustive-deps': 'error',
    },
  },
  {
    files: ['**/*.{js,mjs,cjs}'],
    ...tseslint.configs.disableTypeChecked,
  },
);

// @ts-check
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      '**/dist/**',
      '**/node_modules/**',
      'bench/results/**',
      'test-results/**',
      'playwright-report/**',
      'models/**/*.onnx',
      '**/*.d.ts',
    ],
  },
  // Library code: typed rules, no floating promises, no `any`.
  {
    files: ['packages/**/src/**/*.ts'],
    ignores: ['**/*.test.ts', 'packages/*/src/testing/**'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/require-await': 'off',
      'no-restricted-syntax': ['error', { selector: 'ExportAllDeclaration', message: 'Name every export.' }],
    },
  },
  // Tests (and their support in src/testing/, left out of the build), e2e, tooling: untyped recommended rules.
  {
    files: [
      '**/*.test.ts',
      'packages/*/src/testing/**/*.ts',
      'e2e/**/*.ts',
      'examples/**/*.ts',
      'bench/**/*.{js,mjs,ts}',
      'models/**/*.mjs',
      '*.ts',
      '*.js',
    ],
    extends: [tseslint.configs.recommended],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
);

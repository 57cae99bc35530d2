import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Inference tests are CPU-heavy; the CI box has 2 cores.
    fileParallelism: true,
    maxWorkers: 2,
  },
});

import { defineConfig } from 'vitest/config';

// Timed tests (the bench times runs, and a preview encode on an otherwise idle machine) run after
// everything else, alone: beside the browser test on a 2-core box they would time the neighbour.
const timed = ['test/bench.test.ts', 'test/responsiveness.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Inference tests are CPU-heavy; the CI box has 2 cores.
    fileParallelism: true,
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: 'suite', include: ['test/**/*.test.ts'], exclude: timed, sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: 'timing', include: timed, sequence: { groupOrder: 1 } } },
    ],
  },
});

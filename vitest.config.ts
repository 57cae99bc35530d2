import { defineConfig } from 'vitest/config';

// Tests that start whole processes (web servers, workers, redis-server, a second server after kill -9)
// run after the suite, so their half-dozen Node processes do not starve the browser tests' waits on a
// 2-core box. Timed tests (the bench times runs, and a preview encode on an otherwise idle machine)
// run last, alone: beside anything else they would time the neighbour (the tokenizer's test times its
// encode too).
const processes = ['test/distributed.test.ts', 'test/redis-outage.test.ts', 'test/restart.test.ts', 'test/faults.test.ts', 'test/fault-rounds.test.ts'];
const timed = ['test/bench.test.ts', 'test/tokenizer.test.ts', 'test/responsiveness.test.ts', 'test/demo-model-timing.test.ts'];

export default defineConfig({
  test: {
    // Backstops, not expectations: tests wait on events and states, and on a busy 2-core machine a whole
    // browser run of a template can take minutes. Only a hang should ever reach these.
    testTimeout: 300_000,
    hookTimeout: 300_000,
    // expect.poll waits on the state it asserts about; on a busy 2-core machine a re-render or a socket
    // event can take seconds, so its deadline is generous (vitest's default is 1 s). A poll that passes
    // returns as soon as the state holds, so this costs nothing when things are quick.
    expect: { poll: { timeout: 60_000, interval: 50 } },
    // Inference tests are CPU-heavy; the CI box has 2 cores.
    fileParallelism: true,
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: { name: 'suite', include: ['test/**/*.test.ts', 'examples/*/test/**/*.test.ts'], exclude: [...processes, ...timed], sequence: { groupOrder: 0 } },
      },
      { extends: true, test: { name: 'processes', include: processes, sequence: { groupOrder: 1 } } },
      { extends: true, test: { name: 'timing', include: timed, sequence: { groupOrder: 2 } } },
    ],
  },
});

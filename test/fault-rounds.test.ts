/**
 * A CI-sized run of `npm run faults` (test/support/fault-rounds.ts): one round each of kill -9 during
 * jobs and graph saves, a full disk (a tmpfs where one can be mounted), and a socket flood, against
 * real studio processes. Nothing may be lost, duplicated or corrupt.
 *
 * The Redis rounds (an outage past the stall timeout, two workers) are left to `npm run faults`, to keep
 * this run short; test/redis-outage.test.ts covers one such outage in the suite.
 */
import { afterAll, expect, it } from 'vitest';
import { runFaults, summary } from './support/fault-rounds.ts';
import { stopAll } from './support/processes.ts';

afterAll(stopAll);

it('survives 3 rounds of faults with nothing lost, duplicated or corrupt', async () => {
  const lines: string[] = [];
  const tally = await runFaults({ rounds: 3, seed: 25, kinds: ['kill', 'disk-full', 'socket-flood'], print: (line) => lines.push(line) });
  console.log([...lines, summary(tally)].join('\n'));
  expect(tally.problems, lines.join('\n')).toEqual([]);
  expect(tally).toMatchObject({ rounds: 3, lost: 0, duplicated: 0, corrupt: 0, other: 0 });
  expect(tally.jobs).toBeGreaterThan(3);
}, 180_000);

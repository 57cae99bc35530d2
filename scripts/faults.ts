/**
 * `npm run faults -- [--rounds 20] [--seed N] [--kinds kill,disk-full,socket-flood,redis]`: fault
 * injection against real studio processes on loopback (test/support/fault-rounds.ts says what each
 * kind does and checks). Prints a line per round, the problems found, and a summary line; exits 1 when
 * a job was lost or duplicated, a file corrupt, or anything else went wrong.
 */
import { parseArgs } from 'node:util';
import { clean, FAULT_KINDS, runFaults, summary, type FaultKind } from '../test/support/fault-rounds.ts';

const USAGE = `usage: npm run faults -- [--rounds 20] [--seed N] [--kinds ${FAULT_KINDS.join(',')}]

  --rounds  how many rounds (default 20); the kinds are taken in turn
  --seed    the seed of the random fault points (default: from the clock; printed, so a run can be repeated)
  --kinds   which faults, comma-separated (default: all; redis rounds are skipped without redis-server,
            disk-full rounds where a tmpfs cannot be mounted)`;

function fail(message: string): never {
  console.error(`error: ${message}\n\n${USAGE}`);
  process.exit(2);
}

let values;
try {
  values = parseArgs({
    options: { rounds: { type: 'string' }, seed: { type: 'string' }, kinds: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  }).values;
} catch (err) {
  fail((err as Error).message);
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const rounds = Number(values.rounds ?? '20');
if (!Number.isSafeInteger(rounds) || rounds < 1 || rounds > 10_000)
  fail(`--rounds must be a whole number from 1 to 10000, got ${JSON.stringify(values.rounds)}`);
const seed = values.seed === undefined ? Date.now() % 1_000_000 : Number(values.seed);
if (!Number.isSafeInteger(seed) || seed < 0) fail(`--seed must be a whole number, got ${JSON.stringify(values.seed)}`);
const kinds = (values.kinds?.split(',').map((k) => k.trim()) ?? [...FAULT_KINDS]) as FaultKind[];
const unknown = kinds.filter((k) => !FAULT_KINDS.includes(k));
if (unknown.length > 0 || kinds.length === 0) fail(`--kinds takes ${FAULT_KINDS.join(', ')}; got ${JSON.stringify(values.kinds)}`);

console.log(`faults: ${rounds} rounds of ${kinds.join(', ')}, seed ${seed}`);
const started = Date.now();
const tally = await runFaults({ rounds, seed, kinds, print: (line) => console.log(line) });
console.log(`took ${((Date.now() - started) / 1000).toFixed(0)} s`);
console.log(summary(tally));
process.exit(clean(tally) ? 0 : 1);

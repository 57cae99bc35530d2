/**
 * `npm run demo-model -- [--out DIR] [--seed N]`
 *
 * Without --out: makes sure the cached demo model exists (generating it once) and prints its folder.
 * With --out: writes a fresh demo model into DIR (which must be empty or absent).
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEMO_MODEL_SEED, DEMO_MODEL_VERSION, ensureDemoModel, writeDemoModel } from '../models/demo/index.ts';

const USAGE = 'usage: npm run demo-model -- [--out DIR] [--seed N]';

function readArgs(argv: string[]): { out?: string; seed?: number; help?: boolean } {
  const { values } = parseArgs({ args: argv, options: { out: { type: 'string' }, seed: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  let seed: number | undefined;
  if (values.seed !== undefined) {
    seed = Number(values.seed);
    if (!/^\d+$/.test(values.seed) || seed > 0xffffffff) throw new Error(`--seed must be an integer from 0 to 4294967295, got "${values.seed}"`);
  }
  return { ...(values.out !== undefined ? { out: path.resolve(values.out) } : {}), ...(seed !== undefined ? { seed } : {}), help: values.help };
}

async function main(): Promise<void> {
  const { out, seed, help } = readArgs(process.argv.slice(2));
  if (help) {
    console.log(USAGE);
    return;
  }
  const started = performance.now();
  if (out === undefined) {
    if (seed !== undefined && seed !== DEMO_MODEL_SEED) throw new Error('--seed needs --out: the cached demo model always uses the default seed');
    const dir = await ensureDemoModel();
    console.log(`demo model v${DEMO_MODEL_VERSION} ready in ${dir} (${Math.round(performance.now() - started)} ms)`);
    return;
  }
  if (existsSync(out) && readdirSync(out).length > 0) throw new Error(`${out} is not empty; choose an empty or new folder`);
  await writeDemoModel(out, { seed });
  console.log(`demo model v${DEMO_MODEL_VERSION} (seed ${seed ?? DEMO_MODEL_SEED}) written to ${out} (${Math.round(performance.now() - started)} ms)`);
}

main().catch((error: unknown) => {
  console.error(`demo-model: ${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
  process.exitCode = 1;
});

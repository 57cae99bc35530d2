/**
 * `npm run demo-model -- [--out DIR] [--seed N]`
 *
 * Without --out: makes sure the cached demo model exists (generating it once) and prints its folder.
 * With --out: writes a fresh demo model into DIR (which must be empty or absent).
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { DEMO_MODEL_SEED, DEMO_MODEL_VERSION, ensureDemoModel, writeDemoModel } from '../models/demo/index.ts';

const USAGE = 'usage: npm run demo-model -- [--out DIR] [--seed N]';

function parseArgs(argv: string[]): { out?: string; seed?: number } {
  const args: { out?: string; seed?: number } = {};
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (flag === '--help' || flag === '-h') {
      console.log(USAGE);
      process.exit(0);
    }
    if ((flag === '--out' || flag === '--seed') && (value === undefined || value.startsWith('--'))) {
      throw new Error(`${flag} needs a value\n${USAGE}`);
    }
    if (flag === '--out') {
      args.out = path.resolve(value!);
      i++;
    } else if (flag === '--seed') {
      const seed = Number(value);
      if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`--seed must be an integer from 0 to 4294967295, got "${value}"`);
      args.seed = seed;
      i++;
    } else {
      throw new Error(`unknown argument "${flag}"\n${USAGE}`);
    }
  }
  return args;
}

async function main(): Promise<void> {
  const { out, seed } = parseArgs(process.argv.slice(2));
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
  console.error(`demo-model: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});

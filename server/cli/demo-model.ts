/**
 * `npm run demo-model -- [--out DIR] [--seed N] [--preset demo|sd15] [--fp16]`
 *
 * Without --out: makes sure the cached demo model exists (generating it once) and prints its folder.
 * With --out: writes a fresh demo model into DIR (which must be empty or absent).
 * --preset sd15: Stable Diffusion 1.5's architecture at full size with random weights (3.4 GB, 1.7 GB
 * with --fp16), into DIR or models/sd15-random[-fp16], where Load Model lists it.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEMO_MODEL_SEED, DEMO_MODEL_VERSION, ensureDemoModel, presetByName, writeDemoModel, writePresetModel } from '../models/demo/index.ts';

const USAGE = 'usage: npm run demo-model -- [--out DIR] [--seed N] [--preset demo|sd15] [--fp16]';

function readArgs(argv: string[]): { out?: string; seed?: number; help?: boolean; preset: string; fp16: boolean } {
  const { values } = parseArgs({
    args: argv,
    options: { out: { type: 'string' }, seed: { type: 'string' }, preset: { type: 'string', default: 'demo' }, fp16: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
  });
  let seed: number | undefined;
  if (values.seed !== undefined) {
    seed = Number(values.seed);
    if (!/^\d+$/.test(values.seed) || seed > 0xffffffff) throw new Error(`--seed must be an integer from 0 to 4294967295, got "${values.seed}"`);
  }
  presetByName(values.preset!); // throws for an unknown name
  if (values.fp16 && values.preset === 'demo') throw new Error('--fp16 is for full-size presets (--preset sd15); the demo model is float32');
  return { ...(values.out !== undefined ? { out: path.resolve(values.out) } : {}), ...(seed !== undefined ? { seed } : {}), help: values.help, preset: values.preset!, fp16: values.fp16! };
}

async function main(): Promise<void> {
  const { out: outArg, seed, help, preset, fp16 } = readArgs(process.argv.slice(2));
  if (help) {
    console.log(USAGE);
    return;
  }
  const started = performance.now();
  if (preset !== 'demo') {
    const out = outArg ?? path.resolve('models', `${preset}-random${fp16 ? '-fp16' : ''}`);
    if (existsSync(out) && readdirSync(out).length > 0) throw new Error(`${out} is not empty; choose an empty or new folder`);
    console.log(`writing the ${preset} preset (${fp16 ? 'float16' : 'float32'}, random weights) to ${out}`);
    const n = await writePresetModel(out, { preset: presetByName(preset), precision: fp16 ? 'float16' : 'float32', seed, log: (l) => console.log(l) });
    console.log(`done in ${Math.round((performance.now() - started) / 1000)} s: UNet ${n.unet} parameters, text encoder ${n.text}, VAE ${n.vae}`);
    return;
  }
  const out = outArg;
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

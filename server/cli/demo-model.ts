/**
 * `npm run demo-model -- [--out DIR] [--seed N] [--attention …] [--upsample …] [--dtype …] [--timestep …]
 *  [--input-ids …] [--vae-encoder …] [--no-unet-config]`
 *
 * Without --out: makes sure the cached demo model exists (generating it once) and prints its folder.
 * With --out: writes a fresh demo model into DIR (which must be empty or absent), exported as the options
 * say: one per way real SD 1.x ONNX exports differ (see DemoExport), to try the studio on each kind.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_EXPORT, DEMO_MODEL_SEED, DEMO_MODEL_VERSION, ensureDemoModel, writeDemoModel, type DemoModelOptions } from '../models/demo/index.ts';
import { ATTENTION_STYLES } from '../models/demo/layers.ts';
import { UPSAMPLE_STYLES } from '../models/demo/unet.ts';

/** Each export option: its flag, the values it takes, and the DemoExport field it sets. */
const CHOICES = {
  attention: ATTENTION_STYLES,
  upsample: UPSAMPLE_STYLES,
  dtype: ['float32', 'float16'],
  timestep: ['float32', 'float16', 'int64'],
  'input-ids': ['int32', 'int64'],
  'vae-encoder': ['mean', 'mean-logvar'],
} as const;
const FIELD = { attention: 'attention', upsample: 'upsample', dtype: 'dtype', timestep: 'timestep', 'input-ids': 'inputIds', 'vae-encoder': 'vaeEncoder' } as const;

const USAGE =
  'usage: npm run demo-model -- [--out DIR] [--seed N] ' +
  Object.entries(CHOICES).map(([flag, values]) => `[--${flag} ${values.join('|')}]`).join(' ') +
  ' [--no-unet-config]';

function readArgs(argv: string[]): { out?: string; options: DemoModelOptions; help?: boolean } {
  const choiceOptions = Object.fromEntries(Object.keys(CHOICES).map((k) => [k, { type: 'string' as const }]));
  const { values } = parseArgs({
    args: argv,
    options: { out: { type: 'string' }, seed: { type: 'string' }, help: { type: 'boolean', short: 'h' }, 'no-unet-config': { type: 'boolean' }, ...choiceOptions },
  });
  const options: Record<string, unknown> = {};
  if (values.seed !== undefined) {
    const seed = Number(values.seed);
    if (!/^\d+$/.test(values.seed) || seed > 0xffffffff) throw new Error(`--seed must be an integer from 0 to 4294967295, got "${values.seed}"`);
    options.seed = seed;
  }
  for (const [flag, allowed] of Object.entries(CHOICES) as [keyof typeof CHOICES, readonly string[]][]) {
    const value = (values as Record<string, unknown>)[flag] as string | undefined;
    if (value === undefined) continue;
    if (!allowed.includes(value)) throw new Error(`--${flag} must be one of ${allowed.join(', ')}, got "${value}"`);
    options[FIELD[flag]] = value;
  }
  if (values['no-unet-config']) options.unetConfig = false;
  return { ...(values.out !== undefined ? { out: path.resolve(values.out) } : {}), options: options as DemoModelOptions, help: values.help as boolean | undefined };
}

async function main(): Promise<void> {
  const { out, options, help } = readArgs(process.argv.slice(2));
  if (help) {
    console.log(USAGE);
    return;
  }
  const started = performance.now();
  if (out === undefined) {
    if (Object.keys(options).length > 0) throw new Error('export options and --seed need --out: the cached demo model is always the default export');
    const dir = await ensureDemoModel();
    console.log(`demo model v${DEMO_MODEL_VERSION} ready in ${dir} (${Math.round(performance.now() - started)} ms)`);
    return;
  }
  if (existsSync(out) && readdirSync(out).length > 0) throw new Error(`${out} is not empty; choose an empty or new folder`);
  await writeDemoModel(out, options);
  const { seed, ...kind } = options;
  const exported = Object.entries({ ...DEFAULT_EXPORT, ...kind }).map(([k, v]) => `${k} ${v}`).join(', ');
  console.log(`demo model v${DEMO_MODEL_VERSION} (seed ${seed ?? DEMO_MODEL_SEED}; ${exported}) written to ${out} (${Math.round(performance.now() - started)} ms)`);
}

main().catch((error: unknown) => {
  console.error(`demo-model: ${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
  process.exitCode = 1;
});

/**
 * `npm run demo-model -- [--out DIR] [--seed N] [--preset demo|sd15] [--attention …] [--upsample …]
 *  [--dtype …] [--timestep …] [--input-ids …] [--vae-encoder …] [--no-unet-config]`
 *
 * Without --out: makes sure the cached demo model exists (generating it once) and prints its folder.
 * With --out: writes a fresh demo model into DIR (which must be empty or absent), exported as the options
 * say: one per way real SD 1.x ONNX exports differ (see DemoExport), to try the studio on each kind.
 * --preset sd15: Stable Diffusion 1.5's architecture at full size with random weights (3.4 GB in float32,
 * 1.7 GB with --dtype float16), into DIR or models/sd15-random[-<options>], where Load Model lists it.
 * Every export option applies to it as to the demo (e.g. `--preset sd15 --attention fused --dtype float16`).
 * --taesd --out DIR: a preview decoder in TAESD's layout with random weights (DIR/taesd_decoder.onnx, what
 * `--preview-decoder DIR` takes), to measure what decoded previews cost; --dtype applies.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  DEFAULT_EXPORT,
  DEMO_MODEL_SEED,
  DEMO_MODEL_VERSION,
  describeExport,
  ensureDemoModel,
  presetByName,
  writeDemoModel,
  writePresetModel,
  type DemoExport,
  type DemoModelOptions,
} from '../models/demo/index.ts';
import { ATTENTION_STYLES } from '../models/demo/layers.ts';
import { PRESETS } from '../models/demo/presets.ts';
import { writePreviewDecoder } from '../models/demo/taesd.ts';
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
const FIELD = {
  attention: 'attention',
  upsample: 'upsample',
  dtype: 'dtype',
  timestep: 'timestep',
  'input-ids': 'inputIds',
  'vae-encoder': 'vaeEncoder',
} as const;

const USAGE =
  `usage: npm run demo-model -- [--out DIR] [--seed N] [--preset ${Object.keys(PRESETS).join('|')}] ` +
  Object.entries(CHOICES)
    .map(([flag, values]) => `[--${flag} ${values.join('|')}]`)
    .join(' ') +
  ' [--no-unet-config] | --taesd --out DIR [--dtype float32|float16]';

interface Args {
  out?: string;
  preset: string;
  options: DemoModelOptions;
  taesd: boolean;
  help?: boolean;
}

function readArgs(argv: string[]): Args {
  const choiceOptions = Object.fromEntries(Object.keys(CHOICES).map((k) => [k, { type: 'string' as const }]));
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: 'string' },
      seed: { type: 'string' },
      preset: { type: 'string', default: 'demo' },
      help: { type: 'boolean', short: 'h' },
      'no-unet-config': { type: 'boolean' },
      taesd: { type: 'boolean' },
      ...choiceOptions,
    },
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
  const preset = values.preset as string;
  presetByName(preset); // throws for an unknown name
  const taesd = values.taesd === true;
  if (taesd) {
    const other = Object.keys(options).filter((k) => k !== 'dtype' && k !== 'seed');
    if (values.out === undefined || values.preset !== 'demo' || other.length > 0)
      throw new Error('--taesd takes --out DIR and only --dtype and --seed besides');
  }
  return {
    ...(values.out !== undefined ? { out: path.resolve(values.out) } : {}),
    preset,
    options: options as DemoModelOptions,
    taesd,
    help: values.help as boolean | undefined,
  };
}

/** models/sd15-random, with the export options that differ from the default (models/sd15-random-fp16-attention-fused). */
function defaultPresetFolder(preset: string, kind: Partial<DemoExport>): string {
  const parts = Object.entries(kind)
    .filter(([k, v]) => DEFAULT_EXPORT[k as keyof DemoExport] !== v)
    .map(([k, v]) => (k === 'dtype' ? (v === 'float16' ? 'fp16' : 'fp32') : `${k}-${v}`));
  return path.resolve('models', [`${preset}-random`, ...parts].join('-'));
}

function checkEmpty(out: string): void {
  if (existsSync(out) && readdirSync(out).length > 0) throw new Error(`${out} is not empty; choose an empty or new folder`);
}

async function main(): Promise<void> {
  const { out: outArg, preset, options, taesd, help } = readArgs(process.argv.slice(2));
  if (help) {
    console.log(USAGE);
    return;
  }
  const started = performance.now();
  const { seed, ...kind } = options;
  if (taesd) {
    checkEmpty(outArg!);
    const n = await writePreviewDecoder(outArg!, { seed: seed ?? DEMO_MODEL_SEED, ...(kind.dtype ? { dtype: kind.dtype } : {}) });
    console.log(`preview decoder (TAESD layout, ${n} parameters, random weights) written to ${outArg} (${Math.round(performance.now() - started)} ms)`);
    return;
  }
  if (preset !== 'demo') {
    const out = outArg ?? defaultPresetFolder(preset, kind);
    checkEmpty(out);
    console.log(`writing the ${preset} preset (${describeExport(kind)}, random weights) to ${out}`);
    const n = await writePresetModel(out, { ...options, preset: presetByName(preset), log: (l) => console.log(l) });
    console.log(`done in ${Math.round((performance.now() - started) / 1000)} s: UNet ${n.unet} parameters, text encoder ${n.text}, VAE ${n.vae}`);
    return;
  }
  if (outArg === undefined) {
    if (Object.keys(options).length > 0)
      throw new Error('export options and --seed need --out (or --preset sd15): the cached demo model is always the default export');
    const dir = await ensureDemoModel();
    console.log(`demo model v${DEMO_MODEL_VERSION} ready in ${dir} (${Math.round(performance.now() - started)} ms)`);
    return;
  }
  checkEmpty(outArg);
  await writeDemoModel(outArg, options);
  console.log(
    `demo model v${DEMO_MODEL_VERSION} (seed ${seed ?? DEMO_MODEL_SEED}; ${describeExport(kind)}) written to ${outArg} (${Math.round(performance.now() - started)} ms)`,
  );
}

main().catch((error: unknown) => {
  console.error(`demo-model: ${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
  process.exitCode = 1;
});

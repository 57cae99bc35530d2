/**
 * `npm run convert-model -- FILE|DIR [--dtype float32|float16] [--out DIR] [--config DIR] [--vae FILE]
 *  [--lora FILE]… [--strength S] [--strength-text S]`
 *
 * Converts a diffusers PyTorch folder or a single-file .safetensors checkpoint (SD 1.x) into the diffusers
 * ONNX layout the studio runs, with progress lines. Without --out it fills the same cache Load Model uses
 * (.cache/converted/, keyed by the files' content, dtype and LoRAs) and prints the folder; with --out it
 * writes a standalone folder there. PyTorch checkpoints (.ckpt, .pt, .pth, .bin) are read by the restricted reader
 * (tensors only, nothing run: server/models/convert/torch-file.ts); anything else in them is refused.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { convertToFolder, ensureConverted, type ConvertOptions } from '../models/convert/index.ts';
import { readCommandLine, runIfEntry, UsageError } from './options.ts';

export const CONVERT_USAGE = `usage: npm run convert-model -- FILE|DIR [--dtype float32|float16] [--out DIR] [--config DIR] [--vae FILE] [--lora FILE]… [--strength S] [--strength-text S]

  FILE|DIR          a single-file SD 1.x checkpoint (.safetensors or PyTorch .ckpt, LDM keys) or a diffusers PyTorch folder
  --dtype           weights of the converted model (default float32; float16 halves its size, for CUDA)
  --out DIR         write the converted folder here (empty or new) instead of the studio's cache
  --config DIR      a diffusers folder whose configs and tokenizer describe a single-file checkpoint
                    (needed for the tokenizer of a single file, and for non-standard models)
  --vae FILE        a VAE .safetensors or .ckpt/.pt (LDM or diffusers keys) that replaces the model's own
  --lora FILE       merge a LoRA (kohya or diffusers/PEFT .safetensors); repeat to stack several
  --strength S      LoRA strength on the UNet (default 1)
  --strength-text S LoRA strength on the text encoder (default: the UNet's)`;

export interface ConvertCli {
  source: string;
  out?: string;
  options: ConvertOptions;
}

function strength(name: string, text: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || Math.abs(n) > 4)
    throw new UsageError(`--${name} must be a number from -4 to 4, got ${JSON.stringify(text)}`);
  return n;
}

export function parseConvertCli(argv: string[]): ConvertCli | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        dtype: { type: 'string' },
        out: { type: 'string' },
        config: { type: 'string' },
        vae: { type: 'string' },
        lora: { type: 'string', multiple: true },
        strength: { type: 'string' },
        'strength-text': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return 'help';
  if (positionals.length !== 1)
    throw new UsageError(positionals.length === 0 ? 'give the checkpoint file or folder to convert' : `one model at a time, got ${positionals.join(' ')}`);
  const dtype = values.dtype ?? 'float32';
  if (dtype !== 'float32' && dtype !== 'float16') throw new UsageError(`--dtype must be float32 or float16, got ${JSON.stringify(dtype)}`);
  const unet = values.strength === undefined ? 1 : strength('strength', values.strength);
  const text = values['strength-text'] === undefined ? unet : strength('strength-text', values['strength-text']);
  if (!values.lora && (values.strength !== undefined || values['strength-text'] !== undefined))
    throw new UsageError('--strength and --strength-text apply to --lora');
  return {
    source: path.resolve(positionals[0]!),
    ...(values.out !== undefined ? { out: path.resolve(values.out) } : {}),
    options: {
      dtype,
      ...(values.config !== undefined ? { configDir: path.resolve(values.config) } : {}),
      ...(values.vae !== undefined ? { vae: path.resolve(values.vae) } : {}),
      ...(values.lora ? { loras: values.lora.map((file) => ({ file: path.resolve(file), unet, text })) } : {}),
    },
  };
}

export async function main(argv: string[]): Promise<number> {
  const read = readCommandLine(argv, parseConvertCli, CONVERT_USAGE);
  if ('exit' in read) return read.exit;
  const { source, out, options } = read.cli;
  let shown = -1;
  const t0 = performance.now();
  const run = {
    ...options,
    log: (line: string) => console.log(line),
    progress: (fraction: number) => {
      const tenth = Math.floor(fraction * 10);
      if (tenth > shown) {
        shown = tenth;
        console.log(`  weights ${tenth * 10}%`);
      }
    },
  };
  try {
    const dir = out ? await convertToFolder(source, out, run) : await ensureConverted(source, run);
    const rss = process.resourceUsage().maxRSS / 1024;
    console.log(`ready: ${dir} (${((performance.now() - t0) / 1000).toFixed(1)} s, peak memory ${rss.toFixed(0)} MB)`);
    return 0;
  } catch (err) {
    console.error(`convert-model: ${(err as Error).message}`);
    return 1;
  }
}

runIfEntry(import.meta.url, main);

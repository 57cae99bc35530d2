/**
 * `npm run fetch-model -- [--kind sd|clip|pytorch] [--fp16] [--file NAME] [--repo owner/name] [--revision onnx] [--out dir] [--endpoint url] [--token hf_...]`
 * Downloads a Stable Diffusion 1.x ONNX export (with --kind pytorch a repository in the diffusers PyTorch
 * layout, with --kind clip a split CLIP ONNX export for the metrics, with --file one file of a repository)
 * from the Hugging Face Hub (resumable), checks it and prints how to use it.
 * Exit codes: 0 ready, 1 failed or incomplete, 2 bad usage.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  CLIP_EXPORT,
  DEFAULT_ENDPOINT,
  EXPORT_KINDS,
  FetchModelError,
  SD_EXPORT,
  defaultOutDir,
  pytorchExport,
  singleFileExport,
  type ExportKind,
} from '../models/hub.ts';
import { fetchModel } from '../models/hub-download.ts';
import { createFetchProgress, formatBytes } from './fetch-progress.ts';

const USAGE = `Usage: npm run fetch-model -- [options]

Downloads a Stable Diffusion 1.x ONNX export (diffusers layout) from the Hugging Face Hub, or with
--kind clip a CLIP model as a split ONNX export (text_model.onnx, vision_model.onnx) for the metrics.
Interrupted downloads resume when the command is run again.

Options:
  --kind sd|clip|pytorch  what to fetch (default sd); pytorch: an SD 1.x repository in the diffusers PyTorch
                        layout (safetensors; revision main), converted by Load Model on first use
  --fp16                with --kind pytorch: take the *.fp16.safetensors variants where the repository has them
  --file <name>         just this file of the repository (a single-file checkpoint, a VAE, a LoRA; revision main),
                        into --out (default ./models)
  --repo <owner/name>   Hub repository (default ${SD_EXPORT.defaultRepo}; for clip ${CLIP_EXPORT.defaultRepo})
  --revision <rev>      branch, tag or commit (default ${SD_EXPORT.defaultRevision}; for clip ${CLIP_EXPORT.defaultRevision})
  --out <dir>           destination folder (default ./models/<name>)
  --endpoint <url>      Hub address (default $HF_ENDPOINT or ${DEFAULT_ENDPOINT})
  --token <hf_...>      access token for private or gated models (default $HF_TOKEN)
  -h, --help            show this help
`;

/** What --kind, --fp16 and --file ask for, or why they do not fit together. */
function chooseKind(values: { kind?: string; fp16?: boolean; file?: string }): ExportKind | string {
  if (!Object.hasOwn(EXPORT_KINDS, values.kind ?? '')) return `--kind must be sd, clip or pytorch, got ${values.kind}`;
  if (values.file !== undefined) {
    if (values.kind !== 'sd' || values.fp16) return '--file takes one file as it is: leave out --kind and --fp16';
    if (!values.file || values.file.split('/').some((s) => s === '' || s === '.' || s === '..'))
      return `--file must be a path inside the repository, got "${values.file}"`;
    return singleFileExport(values.file);
  }
  if (values.fp16 && values.kind !== 'pytorch') return '--fp16 applies to --kind pytorch';
  return values.kind === 'pytorch' ? pytorchExport(values.fp16 ?? false) : EXPORT_KINDS[values.kind as keyof typeof EXPORT_KINDS];
}

/** How the studio is started on a model folder (printed after a successful fetch). */
/** How to use the folder: Load Model takes a folder path (relative ones resolve against the server's folder). */
export function startCommand(outDir: string): string {
  return `npm start, then set Load Model → model to ${JSON.stringify(shownPath(outDir))}`;
}

/** The folder relative to the working folder when it is inside it. */
function shownPath(outDir: string): string {
  const rel = path.relative(process.cwd(), outDir) || '.';
  return rel.startsWith('..') ? outDir : rel;
}

export async function main(argv: string[]): Promise<number> {
  let values: {
    kind?: string;
    repo?: string;
    revision?: string;
    out?: string;
    endpoint?: string;
    token?: string;
    help?: boolean;
    fp16?: boolean;
    file?: string;
  };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        kind: { type: 'string', default: 'sd' },
        repo: { type: 'string' },
        revision: { type: 'string' },
        out: { type: 'string' },
        endpoint: { type: 'string' },
        token: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        fp16: { type: 'boolean' },
        file: { type: 'string' },
      },
      allowPositionals: false,
    }));
  } catch (e) {
    process.stderr.write(`fetch-model: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const kind = chooseKind(values);
  if (typeof kind === 'string') {
    process.stderr.write(`fetch-model: ${kind}\n\n${USAGE}`);
    return 2;
  }
  const repo = values.repo ?? kind.defaultRepo;
  const progress = createFetchProgress(process.stderr);
  const abort = new AbortController();
  const onSigint = (): void => {
    abort.abort();
    progress.finish();
    process.stderr.write('fetch-model: interrupted; run the same command again to resume\n');
    process.exit(130);
  };
  process.once('SIGINT', onSigint);
  try {
    const result = await fetchModel({
      repo,
      kind,
      revision: values.revision ?? kind.defaultRevision,
      outDir: values.out ?? (kind.name === 'file' ? 'models' : defaultOutDir(repo)),
      endpoint: values.endpoint ?? process.env.HF_ENDPOINT ?? DEFAULT_ENDPOINT,
      token: values.token ?? process.env.HF_TOKEN ?? process.env.HUGGING_FACE_HUB_TOKEN,
      onEvent: (e) => progress.onEvent(e),
      signal: abort.signal,
    });
    progress.finish();
    if (result.problems.length > 0) {
      process.stderr.write(`fetch-model: the model folder ${result.outDir} is not usable yet:\n`);
      for (const p of result.problems) process.stderr.write(`  - ${p}\n`);
      return 1;
    }
    const use =
      kind === CLIP_EXPORT
        ? `npm run eval -- --clip ${JSON.stringify(shownPath(result.outDir))}, or set Load CLIP → clip to it`
        : startCommand(kind.name === 'file' ? path.join(result.outDir, values.file!) : result.outDir);
    process.stdout.write(
      `${kind === CLIP_EXPORT ? 'CLIP' : 'Model'} ready: ${result.outDir}\n` +
        `  ${result.files.length} files, ${formatBytes(result.totalBytes)} ` +
        `(${formatBytes(result.downloadedBytes)} downloaded now, ${result.skipped} already present); sizes and checksums verified\n` +
        `Use it:\n  ${use}\n`,
    );
    return 0;
  } catch (e) {
    progress.finish();
    // Our errors and file-system errors (EACCES, ENOSPC, ...) already say what is wrong; anything else is a bug.
    const known = e instanceof FetchModelError || typeof (e as NodeJS.ErrnoException).code === 'string';
    const msg = known ? (e as Error).message : `unexpected error: ${(e as Error).stack ?? String(e)}`;
    process.stderr.write(`fetch-model: ${msg}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

const isEntry = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isEntry) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`fetch-model: ${(e as Error).message}\n`);
      process.exit(1);
    },
  );
}

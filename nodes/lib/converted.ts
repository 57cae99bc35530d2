/**
 * Models that Load Model and Load LoRA convert from safetensors (server/models/convert/): the converted
 * folder of a ModelSource, converted on first use with progress on the node, and opened as a pipeline
 * like any ONNX folder. Messages about the files name them as the user did, never by absolute path.
 */
import path from 'node:path';
import { fingerprintFolder } from '../../server/engine/sd/model-folder.ts';
import type { SdPipeline } from '../../server/engine/sd/pipeline.ts';
import type { PipelineHandle } from '../../server/engine/sd/pipelines.ts';
import { convertOffThread } from '../../server/models/convert/convert-thread.ts';
import { convertedPath, type ConvertOptions } from '../../server/models/convert/index.ts';
import { CancelledError } from '../../server/engine/errors.ts';
import { UserError, type NodeContext, type Services } from '../types.ts';
import type { ModelSource } from '../values.ts';
import { withShownPath } from '../../server/models/model-roots.ts';

/** The output dtype of a conversion: float16 where the provider is CUDA (half the memory, the speed of tensor cores), else float32. */
export function conversionDtype(requested: 'auto' | 'float32' | 'float16', services: Pick<Services, 'executionProvider'>): 'float32' | 'float16' {
  if (requested !== 'auto') return requested;
  return services.executionProvider === 'cuda' ? 'float16' : 'float32';
}

const options = (source: ModelSource): ConvertOptions => ({
  dtype: source.dtype,
  loras: source.loras,
  ...(source.configDir ? { configDir: source.configDir } : {}),
});

/** Runs `work`, turning its errors into UserErrors that name the source as the user wrote it. */
async function shown<T>(source: ModelSource, shownAs: string, field: string, work: () => Promise<T> | T): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof CancelledError) throw err;
    let message = err instanceof Error ? err.message : String(err);
    message = withShownPath(message, source.path, shownAs);
    for (const l of source.loras) message = withShownPath(message, l.file, path.basename(l.file));
    if (source.vae) message = withShownPath(message, source.vae, path.basename(source.vae));
    if (err instanceof UserError) throw new UserError(message, err.field ?? field);
    throw new Error(message, { cause: err });
  }
}

/** The cache key of a source (content of its files, dtype, LoRAs and strengths): what Load Model's identity reports. */
export { options as conversionOptions };

export function sourceIdentity(source: ModelSource): string {
  return `converted:${path.basename(convertedPath(source.path, options(source)))}`;
}

/**
 * The converted folder of `source`, converting it now if needed, on a thread of its own (the studio keeps
 * answering), with progress in permille on the node; the job's cancel stops it and leaves nothing cached.
 */
export async function convertedDir(
  source: ModelSource,
  shownAs: string,
  ctx: Pick<NodeContext, 'progress' | 'log' | 'signal'>,
  field = 'model',
): Promise<string> {
  return shown(source, shownAs, field, () =>
    convertOffThread(source.path, {
      ...options(source),
      signal: ctx.signal,
      log: (line) => ctx.log.info(line.trim()),
      progress: (fraction) => ctx.progress(Math.max(1, Math.round(fraction * 1000)), 1000, 'converting'),
    }),
  );
}

/** Converts (if needed) and opens the pipeline of `source`. */
export async function openConverted(
  source: ModelSource,
  shownAs: string,
  ctx: Pick<NodeContext, 'progress' | 'log' | 'services' | 'signal'>,
  field = 'model',
): Promise<{ dir: string; handle: PipelineHandle; pipe: SdPipeline }> {
  const dir = await convertedDir(source, shownAs, ctx, field);
  const handle = ctx.services.models.pipelines.handle(dir, ctx.services.executionProvider, await fingerprintFolder(dir), { deviceId: ctx.services.gpu ?? 0 });
  const pipe = await handle.acquire();
  return { dir, handle, pipe };
}

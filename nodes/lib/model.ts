/** Shared by the model nodes: the pipeline behind a Model value, checks that values belong to it, model paths. */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { SdPipeline } from '../../server/engine/onnx/pipeline.ts';
import type { ModelValue } from '../values.ts';
import { UserError } from '../types.ts';

/** The loaded pipeline of a Model value (loaded again if it was released to make room for another). */
export function pipelineOf(model: ModelValue): Promise<SdPipeline> {
  return model.pipeline.acquire();
}

/**
 * Latents, conditionings and inversions are only meaningful for the model that made them: mixing
 * models gives garbage (or a shape error deep in onnxruntime), so say so up front.
 */
export function requireSameModel(model: ModelValue, value: { modelId: string }, what: string): void {
  if (value.modelId !== model.id) {
    throw new UserError(`${what} was made with a different model than the one connected here; connect the same Load Model node to both`, what);
  }
}

/**
 * A user's model path: absolute as given; relative, looked up under <dataDir>/models first (where the
 * studio keeps models), then the server's working folder (where `npm run fetch-model` puts them).
 */
export async function resolveModelPath(name: string, dataDir: string): Promise<string> {
  if (path.isAbsolute(name)) return name;
  const underData = path.resolve(dataDir, 'models', name);
  return (await stat(underData).then((s) => s.isDirectory(), () => false)) ? underData : path.resolve(name);
}

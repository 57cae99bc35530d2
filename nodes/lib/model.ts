/** Shared by the model nodes: the pipeline behind a Model value, checks that values belong to it, model paths. */
import type { SdPipeline } from '../../server/engine/sd/pipeline.ts';
import type { ModelValue } from '../values.ts';
import { UserError, type Services } from '../types.ts';
import { resolveModelDir } from '../../server/models/model-roots.ts';
import type { ImageSizes } from './image.ts';

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
 * A model folder named in a node's parameter (CLIP, LPIPS, ...): only inside the models folders
 * (<data>/models, the studio's models/, --models-root), one message for every other path.
 */
export function resolveModelPath(name: string, services: Pick<Services, 'modelRoots'>): Promise<string> {
  return resolveModelDir(name, services.modelRoots);
}

/** The image sizes a model takes: sides that are multiples of its VAE factor, whose latent its UNet takes. */
export function modelImageSizes(pipe: SdPipeline): ImageSizes {
  const { latentSizes: rule, vaeDownsample: f } = pipe.info;
  const latent = rule.describe(f);
  return {
    fitSide: (axis, side) => (rule.fitSide(axis, Math.max(1, Math.floor(side / f))) ?? 1) * f,
    takes: (w, h) => w % f === 0 && h % f === 0 && rule.takes(w / f, h / f),
    describe: latent === 'any size' ? `sides that are multiples of ${f}` : latent,
  };
}

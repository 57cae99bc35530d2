/** Shared by the diffusion nodes: the pipeline behind a Model value, and checks that values belong to it. */
import type { SdPipeline } from '../../server/engine/onnx/pipeline.ts';
import type { PipelineHandle } from '../../server/engine/onnx/registry.ts';
import type { ModelValue } from '../values.ts';
import { NodeError } from '../types.ts';

/** The loaded pipeline of a Model value (loaded again if it was released to make room for another). */
export function pipelineOf(model: ModelValue): Promise<SdPipeline> {
  return (model.pipeline as PipelineHandle).acquire();
}

/**
 * Latents, conditionings and inversions are only meaningful for the model that made them: mixing
 * models gives garbage (or a shape error deep in onnxruntime), so say so up front.
 */
export function requireSameModel(model: ModelValue, value: { modelId: string }, what: string): void {
  if (value.modelId !== model.id) {
    throw new NodeError(`${what} was made with a different model than the one connected here; connect the same Load Model node to both`, what);
  }
}

/** Embedding of the empty prompt, for classifier-free guidance (cached by the pipeline). */
export async function unconditional(pipe: SdPipeline): Promise<Float32Array> {
  return (await pipe.encodeText('')).embedding;
}

/** The SD pipelines loaded in this process: a ModelRegistry of SdPipeline (runtime/registry.ts). */
import { ModelRegistry, type ModelHandle } from '../runtime/registry.ts';
import { SdPipeline } from './pipeline.ts';

export type PipelineHandle = ModelHandle<SdPipeline>;

export class PipelineRegistry extends ModelRegistry<SdPipeline> {
  constructor(maxLoaded = 2) {
    super((dir, executionProvider, session) => SdPipeline.load(dir, { executionProvider, session }), maxLoaded);
  }
}

/** The process-wide registry the nodes use. */
export const pipelines = new PipelineRegistry();

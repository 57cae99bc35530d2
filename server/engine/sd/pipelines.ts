/**
 * Loaded SD pipelines: a ModelRegistry of SdPipeline (runtime/registry.ts). The server keeps one in its
 * services (server/services/loaded-models.ts), next to the CLIP and LPIPS models, so one release frees them all.
 */
import { ModelRegistry, type ModelHandle, type ModelLoader } from '../runtime/registry.ts';
import { SdPipeline } from './pipeline.ts';

export type PipelineHandle = ModelHandle<SdPipeline>;

export class PipelineRegistry extends ModelRegistry<SdPipeline> {
  /** `load`: how a folder becomes a pipeline (a test's stand-in; default SdPipeline.load). */
  constructor(maxLoaded = 2, load: ModelLoader<SdPipeline> = (dir, executionProvider, session) => SdPipeline.load(dir, { executionProvider, session })) {
    super(load, maxLoaded);
  }
}

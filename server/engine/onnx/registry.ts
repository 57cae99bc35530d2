/**
 * Loaded pipelines, shared by every job and bounded: an SD 1.x pipeline holds gigabytes of weights
 * (on the GPU with CUDA), so switching models must not keep every model ever used. The least recently
 * used pipeline beyond `maxLoaded` is released; a later use loads it again.
 */
import type { ExecutionProviderRequest } from './runtime.ts';
import { SdPipeline } from './pipeline.ts';

/** What a Model socket carries: enough to get the pipeline back even after it was released. */
export interface PipelineHandle {
  dir: string;
  executionProvider: ExecutionProviderRequest;
  /** Fingerprint of the folder (file sizes and mtimes): a changed file is a different model. */
  id: string;
  acquire(): Promise<SdPipeline>;
}

export class PipelineRegistry {
  /** Insertion order is recency order: the first entry is the least recently used. */
  private readonly loaded = new Map<string, Promise<SdPipeline>>();

  constructor(readonly maxLoaded = 2) {}

  handle(dir: string, executionProvider: ExecutionProviderRequest, id: string): PipelineHandle {
    return { dir, executionProvider, id, acquire: () => this.acquire(dir, executionProvider, id) };
  }

  async acquire(dir: string, executionProvider: ExecutionProviderRequest, id: string): Promise<SdPipeline> {
    const key = JSON.stringify([executionProvider, dir, id]);
    let pipe = this.loaded.get(key);
    if (pipe) {
      this.loaded.delete(key);
    } else {
      pipe = SdPipeline.load(dir, { executionProvider });
      pipe.catch(() => {
        if (this.loaded.get(key) === pipe) this.loaded.delete(key);
      });
    }
    this.loaded.set(key, pipe);
    await this.evict();
    return pipe;
  }

  get size(): number {
    return this.loaded.size;
  }

  /**
   * Releases every loaded pipeline (their sessions and the arenas onnxruntime keeps for them); handles
   * load them again when next used. Call only between jobs. Returns how many were released.
   */
  async releaseAll(): Promise<number> {
    const all = [...this.loaded.values()];
    this.loaded.clear();
    await Promise.all(all.map((p) => p.then((pipe) => pipe.release(), () => undefined)));
    return all.length;
  }

  private async evict(): Promise<void> {
    while (this.loaded.size > this.maxLoaded) {
      const [key, oldest] = this.loaded.entries().next().value as [string, Promise<SdPipeline>];
      this.loaded.delete(key);
      // Jobs run one at a time and nodes acquire the pipeline when they start, so nothing is using it now.
      await oldest.then((p) => p.release(), () => undefined);
    }
  }
}

/** The process-wide registry the nodes use. */
export const pipelines = new PipelineRegistry();

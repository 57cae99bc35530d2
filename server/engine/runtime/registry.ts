/**
 * Loaded models, shared by every job and bounded: an SD 1.x pipeline holds gigabytes of weights
 * (on the GPU with CUDA), so switching models must not keep every model ever used. The least recently
 * used model beyond `maxLoaded` is released; a later use loads it again. One registry per kind of
 * model (SD pipelines, CLIP, LPIPS), each with its own loader.
 */
import type { ExecutionProviderRequest } from './runtime.ts';
import type { SessionSettings } from './sessions.ts';

/** What a socket carries: enough to get the model back even after it was released. */
export interface ModelHandle<T> {
  dir: string;
  executionProvider: ExecutionProviderRequest;
  /** Fingerprint of the folder (file sizes and mtimes): a changed file is a different model. */
  id: string;
  acquire(): Promise<T>;
}

/** How a registry turns a folder into a loaded model. */
export type ModelLoader<T> = (dir: string, executionProvider: ExecutionProviderRequest, session: SessionSettings) => Promise<T>;

export class ModelRegistry<T extends { release(): Promise<void> }> {
  /** Insertion order is recency order: the first entry is the least recently used. */
  private readonly loaded = new Map<string, Promise<T>>();

  constructor(
    private readonly load: ModelLoader<T>,
    readonly maxLoaded = 2,
  ) {}

  handle(dir: string, executionProvider: ExecutionProviderRequest, id: string, session: SessionSettings = {}): ModelHandle<T> {
    return { dir, executionProvider, id, acquire: () => this.acquire(dir, executionProvider, id, session) };
  }

  /** The model of (provider, CUDA device, folder, fingerprint): the same folder on two GPUs is two entries. */
  async acquire(dir: string, executionProvider: ExecutionProviderRequest, id: string, session: SessionSettings = {}): Promise<T> {
    const key = JSON.stringify([executionProvider, session.deviceId ?? 0, dir, id]);
    let model = this.loaded.get(key);
    if (model) {
      this.loaded.delete(key);
    } else {
      model = this.load(dir, executionProvider, session);
      model.catch(() => {
        if (this.loaded.get(key) === model) this.loaded.delete(key);
      });
    }
    this.loaded.set(key, model);
    await this.evict();
    return model;
  }

  /** Releases every loaded model (a tool that is done with its models, before loading more). */
  async clear(): Promise<void> {
    await this.releaseAll();
  }

  get size(): number {
    return this.loaded.size;
  }

  /**
   * Releases every loaded model (their sessions and the arenas onnxruntime keeps for them); handles
   * load them again when next used. Call only between jobs. Returns how many were released.
   */
  async releaseAll(): Promise<number> {
    const all = [...this.loaded.values()];
    this.loaded.clear();
    await Promise.all(
      all.map((p) =>
        p.then(
          (model) => model.release(),
          () => undefined,
        ),
      ),
    );
    return all.length;
  }

  private async evict(): Promise<void> {
    while (this.loaded.size > this.maxLoaded) {
      const [key, oldest] = this.loaded.entries().next().value as [string, Promise<T>];
      this.loaded.delete(key);
      // Jobs run one at a time and nodes acquire the model when they start, so nothing is using it now.
      await oldest.then(
        (m) => m.release(),
        () => undefined,
      );
    }
  }
}

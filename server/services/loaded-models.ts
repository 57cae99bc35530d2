/**
 * The models a server has loaded, one bounded registry per kind (SD pipelines, CLIP, LPIPS). Nodes load
 * models through the registries their services hold (never a process-wide one), so whoever runs the
 * graphs owns them and a release frees every kind: `releaseAll` walks every registry this object holds,
 * and a kind added here is released with the others.
 */
import { ModelRegistry } from '../engine/runtime/registry.ts';
import { PipelineRegistry } from '../engine/sd/pipelines.ts';
import { ClipRegistry } from '../engine/evaluation-models/clip-model.ts';
import { LpipsRegistry } from '../engine/evaluation-models/lpips-model.ts';

export class LoadedModels {
  /** Jobs running on these models now: a release between jobs waits for none (see GraphRunner). */
  activeRuns = 0;

  constructor(
    readonly pipelines: PipelineRegistry = new PipelineRegistry(),
    readonly clip: ClipRegistry = new ClipRegistry(),
    readonly lpips: LpipsRegistry = new LpipsRegistry(),
  ) {}

  /** Every registry held here, whatever its kind. */
  private registries(): ModelRegistry<{ release(): Promise<void> }>[] {
    return Object.values(this).filter((v): v is ModelRegistry<{ release(): Promise<void> }> => v instanceof ModelRegistry);
  }

  /** How many models are loaded, of every kind. */
  get size(): number {
    return this.registries().reduce((n, r) => n + r.size, 0);
  }

  /** Releases every loaded model of every kind (call between jobs); returns how many were released. */
  async releaseAll(): Promise<number> {
    const counts = await Promise.all(this.registries().map((r) => r.releaseAll()));
    return counts.reduce((a, b) => a + b, 0);
  }
}

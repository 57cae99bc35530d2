/**
 * Node output cache, keyed by content (see keys.ts): an LRU map, so the most recently used results
 * (the inversion the user keeps re-decoding) stay while old ones go.
 */
import type { NodeRunResult } from '../../nodes/types.ts';

export interface CachedOutputs {
  /** The node's output values by output name. */
  outputs: Record<string, unknown>;
  /** What an output node showed the user. */
  result?: NodeRunResult;
  /** Warnings the node raised when it ran, replayed when served from cache. */
  warnings: string[];
}

export class OutputCache {
  readonly maxEntries: number;
  private readonly entries = new Map<string, CachedOutputs>();

  constructor(opts: { maxEntries?: number } = {}) {
    const max = opts.maxEntries ?? 128;
    if (!Number.isInteger(max) || max < 0) throw new Error(`OutputCache maxEntries must be a whole number ≥ 0, got ${max}`);
    this.maxEntries = max;
  }

  get(key: string): CachedOutputs | undefined {
    const hit = this.entries.get(key);
    if (hit === undefined) return undefined;
    // Re-insert so Map iteration order is least → most recently used.
    this.entries.delete(key);
    this.entries.set(key, hit);
    return hit;
  }

  set(key: string, value: CachedOutputs): void {
    this.entries.delete(key);
    if (this.maxEntries === 0) return;
    this.entries.set(key, value);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}

/**
 * Node output cache, keyed by content (see keys.ts): an LRU map, so the most recently used results
 * (the inversion the user keeps re-decoding) stay while old ones go. Bounded by entries and by bytes:
 * 128 entries of 2048 px images and inversions are gigabytes, so the bytes the outputs' arrays hold
 * are counted, and the least recently used entries leave until the total fits.
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

/**
 * Bytes held by the typed arrays reachable from `value` (images, latents, inversion codes), each buffer
 * counted once. Plain fields are small and not counted; functions (a model's handle) are not entered.
 */
export function outputBytes(value: unknown): number {
  const seen = new Set<ArrayBufferLike>();
  const visited = new Set<object>();
  const stack: unknown[] = [value];
  let bytes = 0;
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object' || visited.has(v)) continue;
    visited.add(v);
    if (ArrayBuffer.isView(v)) {
      if (!seen.has(v.buffer)) {
        seen.add(v.buffer);
        bytes += v.buffer.byteLength;
      }
      continue;
    }
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push(child);
  }
  return bytes;
}

export class OutputCache {
  readonly maxEntries: number;
  readonly maxBytes: number;
  private readonly entries = new Map<string, { value: CachedOutputs; bytes: number }>();
  private totalBytes = 0;

  constructor(opts: { maxEntries?: number; maxBytes?: number } = {}) {
    const max = opts.maxEntries ?? 128;
    if (!Number.isInteger(max) || max < 0) throw new Error(`OutputCache maxEntries must be a whole number ≥ 0, got ${max}`);
    const maxBytes = opts.maxBytes ?? 1024 * 1024 * 1024;
    if (!(maxBytes >= 0)) throw new Error(`OutputCache maxBytes must be ≥ 0, got ${maxBytes}`);
    this.maxEntries = max;
    this.maxBytes = maxBytes;
  }

  get(key: string): CachedOutputs | undefined {
    const hit = this.entries.get(key);
    if (hit === undefined) return undefined;
    // Re-insert so Map iteration order is least → most recently used.
    this.entries.delete(key);
    this.entries.set(key, hit);
    return hit.value;
  }

  set(key: string, value: CachedOutputs): void {
    this.remove(key);
    const bytes = outputBytes(value.outputs);
    // An entry larger than the whole cache would only push everything else out, then itself.
    if (this.maxEntries === 0 || bytes > this.maxBytes) return;
    this.entries.set(key, { value, bytes });
    this.totalBytes += bytes;
    while (this.entries.size > this.maxEntries || this.totalBytes > this.maxBytes) {
      this.remove(this.entries.keys().next().value as string);
    }
  }

  clear(): void {
    this.entries.clear();
    this.totalBytes = 0;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Bytes the cached outputs hold (as counted by outputBytes). */
  get bytes(): number {
    return this.totalBytes;
  }

  private remove(key: string): void {
    const old = this.entries.get(key);
    if (!old) return;
    this.entries.delete(key);
    this.totalBytes -= old.bytes;
  }
}

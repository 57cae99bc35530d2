/**
 * Per-node runtime state (validation issues, progress, previews, results, warnings): one store per open
 * graph (each graph tab has its own, so a run of one tab never paints the nodes of another that shares
 * its node ids). Node components reach their graph's store through the node environment
 * (editor/node-env.ts) and subscribe with useSyncExternalStore.
 */
import { useSyncExternalStore } from 'react';
import type { ValidationIssue } from '../../server/protocol/graph.ts';
import type { NodeResult } from '../../server/protocol/events.ts';

export type NodeRunStatus = 'idle' | 'pending' | 'running' | 'done' | 'cached' | 'failed' | 'cancelled';

export interface NodeRuntime {
  issues: ValidationIssue[];
  /** Problems of a node no output needs: a run leaves it out, so they are warnings. */
  leftOut?: ValidationIssue[];
  status: NodeRunStatus;
  progress?: { step: number; total: number };
  /** Blob URL of the latest step preview; the previous one is revoked when replaced. */
  previewUrl?: string;
  result?: NodeResult;
  warnings: string[];
  error?: string;
  ms?: number;
}

const EMPTY: NodeRuntime = Object.freeze({ issues: [], status: 'idle', warnings: [] }) as NodeRuntime;

type Listener = () => void;

export class NodeRuntimeStore {
  private states = new Map<string, NodeRuntime>();
  private listeners = new Map<string, Set<Listener>>();

  get(id: string): NodeRuntime {
    return this.states.get(id) ?? EMPTY;
  }

  /** Immutable update: components re-render because the object identity changes. */
  update(id: string, patch: Partial<NodeRuntime> | ((s: NodeRuntime) => Partial<NodeRuntime>)): void {
    const prev = this.get(id);
    const delta = typeof patch === 'function' ? patch(prev) : patch;
    if ('previewUrl' in delta && prev.previewUrl && prev.previewUrl !== delta.previewUrl) {
      URL.revokeObjectURL(prev.previewUrl);
    }
    this.states.set(id, { ...prev, ...delta });
    this.emit(id);
  }

  /**
   * Drops run state of every node before a new run; keeps its issues, its result and its last preview
   * (a node the run takes from the cache sends no new one, and must not lose what it showed).
   */
  resetRun(ids: Iterable<string>, status: NodeRunStatus = 'idle'): void {
    for (const id of ids) {
      const prev = this.get(id);
      this.states.set(id, { issues: prev.issues, leftOut: prev.leftOut, status, warnings: [], result: prev.result, previewUrl: prev.previewUrl });
      this.emit(id);
    }
  }

  /** The checks' answer: `byNode` stops a run, `leftOutByNode` belongs to nodes a run leaves out. */
  setIssues(byNode: Map<string, ValidationIssue[]>, allIds: Iterable<string>, leftOutByNode: Map<string, ValidationIssue[]> = new Map()): void {
    for (const id of allIds) {
      const next = byNode.get(id) ?? [];
      const leftOut = leftOutByNode.get(id) ?? [];
      const prev = this.get(id);
      if (prev.issues.length === 0 && next.length === 0 && !prev.leftOut?.length && leftOut.length === 0) continue;
      if (JSON.stringify([prev.issues, prev.leftOut ?? []]) === JSON.stringify([next, leftOut])) continue;
      this.update(id, { issues: next, leftOut });
    }
  }

  remove(id: string): void {
    const prev = this.states.get(id);
    if (prev?.previewUrl) URL.revokeObjectURL(prev.previewUrl);
    this.states.delete(id);
    this.emit(id);
  }

  clear(): void {
    for (const id of [...this.states.keys()]) this.remove(id);
  }

  subscribe(id: string, fn: Listener): () => void {
    let set = this.listeners.get(id);
    if (!set) this.listeners.set(id, (set = new Set()));
    set.add(fn);
    return () => set!.delete(fn);
  }

  private emit(id: string): void {
    for (const fn of this.listeners.get(id) ?? []) fn();
  }
}

export function useNodeRuntime(store: NodeRuntimeStore, id: string): NodeRuntime {
  return useSyncExternalStore(
    (fn) => store.subscribe(id, fn),
    () => store.get(id),
  );
}

/** A small observable value: state that components outside React's tree (node views, the job tracker) share. */
export class Observable<T> {
  private listeners = new Set<Listener>();
  constructor(private value: T) {}
  get = (): T => this.value;
  set(value: T): void {
    this.value = value;
    for (const fn of this.listeners) fn();
  }
  subscribe = (fn: Listener): (() => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };
}

export function useObservable<T>(o: Observable<T>): T {
  return useSyncExternalStore(o.subscribe, o.get);
}

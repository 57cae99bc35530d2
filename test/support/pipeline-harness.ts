/** Runs shipped templates through the real catalog and executor, shrunk so they take seconds on CPU. */
import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createCatalog } from '../../server/catalog.ts';
import { validateGraph, formatIssue } from '../../server/graph/validate.ts';
import { executeGraph, MemoStore, type ExecEvent, type ExecuteSummary } from '../../server/executor/executor.ts';
import { OutputCache } from '../../server/executor/cache.ts';
import { nodeDefinitions } from '../../nodes/index.ts';
import type { Graph } from '../../server/protocol/graph.ts';
import type { Services } from '../../nodes/types.ts';

export const projectRoot = path.resolve(import.meta.dirname, '../..');
export const catalog = createCatalog(nodeDefinitions);
export const tinySd = path.resolve(projectRoot, '../shared/fixtures/tiny-sd');

export async function loadTemplate(name: string): Promise<Graph> {
  return JSON.parse(await readFile(path.join(projectRoot, 'graphs', `${name}.json`), 'utf8')) as Graph;
}

/** Sets params by node type (all nodes of that type) or by node id. */
export function withParams(graph: Graph, byTypeOrId: Record<string, Record<string, unknown>>): Graph {
  const g = structuredClone(graph);
  for (const n of g.nodes) {
    const patch = { ...byTypeOrId[n.type], ...byTypeOrId[n.id] };
    n.params = { ...n.params, ...patch };
  }
  return g;
}

/** The template made small: a 64×64 sample image, few steps. */
export function shrink(graph: Graph, model = 'demo', steps = 8, skip = 2): Graph {
  return withParams(graph, {
    LoadModel: { model },
    LoadImage: { max_side: 64 },
    Invert: { steps, skip },
  });
}

export class Runner {
  readonly cache = new OutputCache();
  readonly memo = new MemoStore();
  events: ExecEvent[] = [];
  constructor(readonly services: Services) {}

  static async create(): Promise<Runner> {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'dualstyle-pipe-'));
    return new Runner({ dataDir, executionProvider: 'cpu' });
  }

  async run(graph: Graph, opts: { signal?: AbortSignal; previewIntervalMs?: number; onEvent?: (e: ExecEvent) => void } = {}): Promise<ExecuteSummary> {
    const v = validateGraph(graph, catalog);
    if (!v.ok || !v.graph) throw new Error(`invalid graph: ${v.issues.map(formatIssue).join('; ')}`);
    this.events = [];
    return executeGraph({
      jobId: 'test',
      graph: v.graph,
      catalog,
      services: this.services,
      cache: this.cache,
      memo: this.memo,
      signal: opts.signal ?? new AbortController().signal,
      previewIntervalMs: opts.previewIntervalMs,
      emit: (e) => {
        this.events.push(e);
        opts.onEvent?.(e);
      },
    });
  }

  eventsOf(type: ExecEvent['type'], nodeId?: string): ExecEvent[] {
    return this.events.filter((e) => e.type === type && (!nodeId || e.nodeId === nodeId));
  }
}

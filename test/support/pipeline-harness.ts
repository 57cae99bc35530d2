/** Runs shipped templates through the real catalog and executor, shrunk so they take seconds on CPU. */
import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createCatalog } from '../../server/catalog.ts';
import type { ExecEvent, ExecuteSummary } from '../../server/executor/executor.ts';
import { GraphRunner, type GraphRunnerOptions } from '../../server/executor/graph-runner.ts';
import { withParams } from '../../server/graph/with-params.ts';
import { nodeDefinitions } from '../../nodes/index.ts';
import type { Graph } from '../../server/protocol/graph.ts';

export const projectRoot = path.resolve(import.meta.dirname, '../..');
export const catalog = createCatalog(nodeDefinitions);
export const tinySd = path.resolve(projectRoot, '../shared/fixtures/tiny-sd');

export async function loadTemplate(name: string): Promise<Graph> {
  return JSON.parse(await readFile(path.join(projectRoot, 'graphs', `${name}.json`), 'utf8')) as Graph;
}

export { withParams };

/** The template made small: a 64×64 sample image, few steps. */
export function shrink(graph: Graph, model = 'demo', steps = 8, skip = 2): Graph {
  return withParams(graph, {
    LoadModel: { model },
    LoadImage: { max_side: 64 },
    Invert: { steps, skip },
  });
}

/** The real catalog through the GraphRunner façade, on a temporary data folder, recording every event. */
export class Runner extends GraphRunner {
  events: ExecEvent[] = [];

  static async create(opts: Partial<GraphRunnerOptions> = {}): Promise<Runner> {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'dualstyle-pipe-'));
    // The reference fixture and the exports tests write to the temp folder live outside the studio's
    // models folders: allow both, as --models-root would.
    return new Runner({ catalog, dataDir, executionProvider: 'cpu', modelRoots: [path.dirname(tinySd), os.tmpdir()], ...opts });
  }

  override async run(
    graph: unknown,
    opts: { signal?: AbortSignal; previewIntervalMs?: number; onEvent?: (e: ExecEvent) => void } = {},
  ): Promise<ExecuteSummary> {
    this.events = [];
    return super.run(graph, {
      jobId: 'test',
      signal: opts.signal,
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

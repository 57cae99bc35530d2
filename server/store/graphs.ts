/**
 * Saved graphs: read-only templates shipped with the project, and the user's own graphs under
 * <dataDir>/graphs. One JSON file per graph, named `<name>.json`.
 */
import { promises as fs } from 'node:fs';
import type { Graph } from '../protocol/graph.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { formatBytes } from '../util/bytes.ts';
import { INVALID_NAME_MESSAGE, noSpaceError, StoreError } from './errors.ts';
import { GRAPH_EXT, GraphIndex, graphTitle, isMissing } from './graph-index.ts';
import { isSafeName, resolveInside } from './paths.ts';

export type GraphSource = 'template' | 'user';

export interface GraphEntry {
  name: string;
  source: GraphSource;
  title: string;
  /** Last modification, epoch milliseconds. */
  updatedAt: number;
}

/** How much the user's saved graphs may take (a full store answers 507, saving over a graph still works). */
export interface GraphQuota {
  maxGraphs: number;
  maxTotalBytes: number;
}

export const DEFAULT_GRAPH_QUOTA: GraphQuota = { maxGraphs: 1000, maxTotalBytes: 256 * 1024 * 1024 };

/** Larger files (hand-made; the API's body limit is smaller) are listed by name, not parsed. */
const MAX_PARSE_BYTES = 4 * 1024 * 1024;

export class GraphStore {
  private readonly templates: GraphIndex;
  private readonly user: GraphIndex;
  /** Saves and deletes one at a time, so quota checks and the index see each other's results. */
  private writes: Promise<unknown> = Promise.resolve();

  /**
   * @param indexFile where the user folder's index is kept between runs (default: none, rebuilt on
   *   first use); the studio keeps it in the data folder, beside the graphs folder, not in it
   */
  constructor(
    readonly templatesDir: string,
    readonly userDir: string,
    readonly quota: GraphQuota = DEFAULT_GRAPH_QUOTA,
    indexFile: string | null = null,
  ) {
    this.templates = new GraphIndex(templatesDir, null, MAX_PARSE_BYTES);
    this.user = new GraphIndex(userDir, indexFile, MAX_PARSE_BYTES);
  }

  /** Every graph, templates first, each group sorted by name; from the indexes, not by parsing each file. */
  async list(): Promise<GraphEntry[]> {
    const entries = (index: Map<string, { title: string; mtimeMs: number }>, source: GraphSource): GraphEntry[] =>
      [...index].map(([name, e]) => ({ name, source, title: e.title, updatedAt: Math.round(e.mtimeMs) }));
    const templates = entries(await this.templates.refresh(), 'template');
    const user = entries(await this.user.refresh(), 'user');
    const templateNames = new Set(templates.map((t) => t.name));
    // A template shadows a user file of the same name (saving under a template's name is refused).
    return [...templates, ...user.filter((u) => !templateNames.has(u.name))];
  }

  async isTemplate(name: string): Promise<boolean> {
    return (await statFile(this.file(this.templatesDir, name))) !== null;
  }

  /** The stored JSON of a graph, exactly as saved (not revalidated: the editor shows its issues). */
  async read(name: string): Promise<{ source: GraphSource; graph: unknown }> {
    for (const [dir, source] of [
      [this.templatesDir, 'template'],
      [this.userDir, 'user'],
    ] as const) {
      const file = this.file(dir, name);
      let text: string;
      try {
        text = await fs.readFile(file, 'utf8');
      } catch (err) {
        if (isMissing(err)) continue;
        throw err;
      }
      try {
        return { source, graph: JSON.parse(text) as unknown };
      } catch (err) {
        throw new StoreError('corrupt', `graph "${name}" is not valid JSON on disk: ${(err as Error).message}`);
      }
    }
    throw new StoreError('not_found', `no graph named "${name}"`);
  }

  /**
   * Saves a user graph atomically, as compact JSON (a file is as large as the graph, whatever its
   * nesting); templates are read-only. A new graph beyond the quota is refused (quota_exceeded).
   */
  save(name: string, graph: Graph): Promise<GraphEntry> {
    return this.serially(async () => {
      this.check(name);
      if (await this.isTemplate(name)) {
        throw new StoreError('read_only', `"${name}" is a template; templates are read-only; save under another name`);
      }
      let text: string;
      try {
        text = JSON.stringify(graph) + '\n';
      } catch (err) {
        // Validation bounds meta and params; this is the last line should a caller skip it.
        const why = err instanceof RangeError ? 'it is nested too deeply to write as JSON' : (err as Error).message;
        throw new StoreError('invalid_graph', `graph "${name}" cannot be saved: ${why}`);
      }
      await this.checkQuota(name, Buffer.byteLength(text));
      try {
        await writeFileAtomic(this.file(this.userDir, name), text);
      } catch (err) {
        throw noSpaceError(err, `graph "${name}"`);
      }
      const title = graphTitle(graph, name);
      const entry = await this.user.put(name, title);
      return { name, source: 'user', title, updatedAt: Math.round(entry.mtimeMs) };
    });
  }

  delete(name: string): Promise<void> {
    return this.serially(async () => {
      this.check(name);
      if (await this.isTemplate(name)) {
        throw new StoreError('read_only', `"${name}" is a template; templates are read-only and cannot be deleted`);
      }
      try {
        await fs.unlink(this.file(this.userDir, name));
      } catch (err) {
        if (isMissing(err)) throw new StoreError('not_found', `no saved graph named "${name}"`);
        throw err;
      }
      await this.user.remove(name);
    });
  }

  private async checkQuota(name: string, bytes: number): Promise<void> {
    const index = await this.user.refresh();
    const previous = index.get(name);
    const count = index.size + (previous ? 0 : 1);
    let total = bytes - (previous?.bytes ?? 0);
    for (const e of index.values()) total += e.bytes;
    const { maxGraphs, maxTotalBytes } = this.quota;
    if (count > maxGraphs) {
      throw new StoreError(
        'quota_exceeded',
        `cannot save "${name}": the studio keeps at most ${maxGraphs} saved graphs and has ${index.size}; delete some, or save over an existing one`,
      );
    }
    if (total > maxTotalBytes) {
      throw new StoreError(
        'quota_exceeded',
        `cannot save "${name}" (${formatBytes(bytes)}): saved graphs may take ${formatBytes(maxTotalBytes)} in all and would take ${formatBytes(total)}; delete some first`,
      );
    }
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    const run = this.writes.then(work, work);
    this.writes = run.catch(() => undefined);
    return run;
  }

  private check(name: string): void {
    if (!isSafeName(name)) throw new StoreError('invalid_name', INVALID_NAME_MESSAGE);
  }

  private file(dir: string, name: string): string {
    this.check(name);
    return resolveInside(dir, name + GRAPH_EXT);
  }
}

async function statFile(file: string) {
  try {
    return await fs.stat(file);
  } catch (err) {
    if (isMissing(err)) return null;
    throw err;
  }
}

/**
 * Saved graphs: read-only templates shipped with the project, and the user's own graphs under
 * <dataDir>/graphs. One JSON file per graph, named `<name>.json`.
 */
import { promises as fs } from 'node:fs';
import type { Graph } from '../protocol/graph.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { INVALID_NAME_MESSAGE, StoreError } from './errors.ts';
import { isSafeName, resolveInside } from './paths.ts';

export type GraphSource = 'template' | 'user';

export interface GraphEntry {
  name: string;
  source: GraphSource;
  title: string;
  /** Last modification, epoch milliseconds. */
  updatedAt: number;
}

const EXT = '.json';

export class GraphStore {
  constructor(
    readonly templatesDir: string,
    readonly userDir: string,
  ) {}

  /** Every graph, templates first, each group sorted by name. */
  async list(): Promise<GraphEntry[]> {
    const templates = await this.listFolder(this.templatesDir, 'template');
    const user = await this.listFolder(this.userDir, 'user');
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

  /** Saves a user graph atomically; templates are read-only. */
  async save(name: string, graph: Graph): Promise<GraphEntry> {
    this.check(name);
    if (await this.isTemplate(name)) {
      throw new StoreError('read_only', `"${name}" is a template; templates are read-only; save under another name`);
    }
    let text: string;
    try {
      text = JSON.stringify(graph, null, 2) + '\n';
    } catch (err) {
      // meta accepts any JSON, and JSON.parse takes nesting that JSON.stringify's recursion cannot.
      const why = err instanceof RangeError ? 'it is nested too deeply to write as JSON' : (err as Error).message;
      throw new StoreError('invalid_graph', `graph "${name}" cannot be saved: ${why}`);
    }
    const file = this.file(this.userDir, name);
    await writeFileAtomic(file, text);
    const stat = await fs.stat(file);
    return { name, source: 'user', title: titleOf(graph, name), updatedAt: Math.round(stat.mtimeMs) };
  }

  async delete(name: string): Promise<void> {
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
  }

  private check(name: string): void {
    if (!isSafeName(name)) throw new StoreError('invalid_name', INVALID_NAME_MESSAGE);
  }

  private file(dir: string, name: string): string {
    this.check(name);
    return resolveInside(dir, name + EXT);
  }

  private async listFolder(dir: string, source: GraphSource): Promise<GraphEntry[]> {
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch (err) {
      if (isMissing(err)) return [];
      throw err;
    }
    const entries: GraphEntry[] = [];
    for (const fileName of names.sort()) {
      if (!fileName.endsWith(EXT)) continue;
      const name = fileName.slice(0, -EXT.length);
      if (!isSafeName(name)) continue;
      const file = resolveInside(dir, fileName);
      const stat = await statFile(file);
      if (!stat?.isFile()) continue;
      let title = name;
      try {
        title = titleOf(JSON.parse(await fs.readFile(file, 'utf8')), name);
      } catch {
        /* a corrupt file is still listed, so the user can see and delete it */
      }
      entries.push({ name, source, title, updatedAt: Math.round(stat.mtimeMs) });
    }
    return entries;
  }
}

function titleOf(graph: unknown, fallback: string): string {
  const title = (graph as { meta?: { title?: unknown } } | null)?.meta?.title;
  return typeof title === 'string' && title.trim() !== '' ? title : fallback;
}

async function statFile(file: string) {
  try {
    return await fs.stat(file);
  } catch (err) {
    if (isMissing(err)) return null;
    throw err;
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

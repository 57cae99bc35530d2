/**
 * What a folder of graph files holds, without reading them each time: name, title, size and mtime of
 * every `<name>.json`. A listing stats the files and parses only those that changed since the index
 * saw them (new, edited by hand), so listing costs one stat per graph, not a parse. The user folder's
 * index is kept on disk (`<data>/.graphs-index.json`), so a restart parses nothing either.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../util/atomic.ts';
import { isSafeName } from './paths.ts';

export const GRAPH_EXT = '.json';

export interface IndexEntry {
  title: string;
  bytes: number;
  mtimeMs: number;
}

export class GraphIndex {
  private entries: Map<string, IndexEntry> | null = null;
  private persisted = '';

  /**
   * @param dir the folder of graph files
   * @param indexFile where the index is kept between runs (the user folder's; templates have none)
   * @param maxParseBytes files larger than this are listed under their name, not parsed for a title
   */
  constructor(
    readonly dir: string,
    private readonly indexFile: string | null,
    private readonly maxParseBytes: number,
  ) {}

  /** Every graph in the folder, by name, brought up to date with the files on disk. */
  async refresh(): Promise<Map<string, IndexEntry>> {
    const known = this.entries ?? (await this.load());
    let names: string[];
    try {
      names = await fs.readdir(this.dir);
    } catch (err) {
      if (isMissing(err)) names = [];
      else throw err;
    }
    const next = new Map<string, IndexEntry>();
    for (const fileName of names.sort()) {
      if (!fileName.endsWith(GRAPH_EXT)) continue;
      const name = fileName.slice(0, -GRAPH_EXT.length);
      if (!isSafeName(name)) continue;
      const file = path.join(this.dir, fileName);
      let stat;
      try {
        stat = await fs.stat(file);
      } catch (err) {
        if (isMissing(err)) continue; // deleted while we listed
        throw err;
      }
      if (!stat.isFile()) continue;
      const old = known.get(name);
      // To the millisecond: what tools that copy a file (and utimes, through a float of seconds) keep.
      if (old && old.bytes === stat.size && Math.abs(old.mtimeMs - stat.mtimeMs) < 1) {
        next.set(name, old);
        continue;
      }
      next.set(name, { title: await this.titleOf(file, name, stat.size), bytes: stat.size, mtimeMs: stat.mtimeMs });
    }
    this.entries = next;
    await this.save();
    return next;
  }

  /** Records a graph just written (its title from the graph itself, no re-read). */
  async put(name: string, title: string): Promise<IndexEntry> {
    const entries = this.entries ?? (await this.refresh());
    const stat = await fs.stat(path.join(this.dir, name + GRAPH_EXT));
    const entry = { title, bytes: stat.size, mtimeMs: stat.mtimeMs };
    entries.set(name, entry);
    await this.save();
    return entry;
  }

  async remove(name: string): Promise<void> {
    const entries = this.entries ?? (await this.refresh());
    entries.delete(name);
    await this.save();
  }

  private async titleOf(file: string, name: string, bytes: number): Promise<string> {
    if (bytes > this.maxParseBytes) return name;
    try {
      return graphTitle(JSON.parse(await fs.readFile(file, 'utf8')), name);
    } catch {
      return name; // a corrupt file is still listed, so the user can see and delete it
    }
  }

  private async load(): Promise<Map<string, IndexEntry>> {
    if (!this.indexFile) return new Map();
    try {
      const text = await fs.readFile(this.indexFile, 'utf8');
      const parsed = JSON.parse(text) as Record<string, IndexEntry>;
      this.persisted = text;
      const map = new Map<string, IndexEntry>();
      for (const [name, e] of Object.entries(parsed)) {
        if (isSafeName(name) && typeof e?.title === 'string' && Number.isFinite(e.bytes) && Number.isFinite(e.mtimeMs)) map.set(name, e);
      }
      return map;
    } catch {
      return new Map(); // missing or damaged: rebuilt from the files
    }
  }

  private async save(): Promise<void> {
    if (!this.indexFile || !this.entries) return;
    const text = JSON.stringify(Object.fromEntries(this.entries));
    if (text === this.persisted) return;
    await writeFileAtomic(this.indexFile, text);
    this.persisted = text;
  }
}

/** The title a graph shows in lists: meta.title when it has one, else its name. */
export function graphTitle(graph: unknown, fallback: string): string {
  const title = (graph as { meta?: { title?: unknown } } | null)?.meta?.title;
  return typeof title === 'string' && title.trim() !== '' ? title : fallback;
}

export function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

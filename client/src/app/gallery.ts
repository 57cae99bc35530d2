/**
 * The result gallery: the final images of the server's job history (every tab's and every user's runs),
 * newest first, each able to give back the graph that made it (so its PNG download carries that graph,
 * not whatever the canvas holds by then). The server keeps the history; this browser keeps only what it
 * chose not to see (images removed from the list, the list cleared), in localStorage.
 */
import type { Graph } from '../../../server/protocol/graph.ts';
import type { HistoryEntry, HistoryPage, JobDetail } from '../../../server/protocol/events.ts';
import { api } from '../api.ts';
import { Observable } from '../runtime.ts';

export interface GalleryImage {
  /** Unique per job, node and image. */
  key: string;
  jobId: string;
  nodeId: string;
  /** The output node's title when the job ran ("Epsilon merge", "Style 1 only", ...). */
  title: string;
  /** The graph's name or title when the job ran. */
  graphLabel: string;
  url: string;
  name: string;
  width: number;
  height: number;
  /** When its job finished (ms since epoch). */
  at: number;
}

/** The graph of a job and how to label it. */
export interface JobRecord {
  graph: Graph;
  graphLabel: string;
}

/** Where the history comes from: the studio API, or a test's server. */
export interface HistorySource {
  history(offset: number, limit: number): Promise<HistoryPage>;
  job(id: string): Promise<JobDetail>;
}

interface UiState {
  /** Keys of images removed from the list. */
  hidden: string[];
  /** Images of jobs finished at or before this time are not listed (the list was cleared). */
  clearedAt: number;
}

const UI_KEY = 'dualstyle.gallery.ui.v2';
const MAX_IMAGES = 48;
const HISTORY_PAGE = 50;

export class Gallery {
  readonly images = new Observable<GalleryImage[]>([]);
  private entries: HistoryEntry[] = [];
  /** Jobs whose graph is known: submitted by this tab (labelled as the editor showed it), or fetched. */
  private readonly jobs = new Map<string, JobRecord>();
  private ui: UiState;
  private loading: Promise<void> | null = null;
  private again = false;

  constructor(
    private readonly source: HistorySource = { history: api.history, job: api.job },
    private readonly storage: Pick<Storage, 'getItem' | 'setItem' | 'removeItem'> | null = typeof localStorage === 'undefined' ? null : localStorage,
  ) {
    this.ui = this.load();
  }

  /** Called when this tab submits a job: its images take the editor's label for the graph. */
  recordJob(jobId: string, record: JobRecord): void {
    this.jobs.set(jobId, record);
  }

  /** Reads the server's history again (on start, and whenever a job ends or the history changes). */
  refresh(): Promise<void> {
    if (this.loading) {
      this.again = true;
      return this.loading;
    }
    this.loading = (async () => {
      do {
        this.again = false;
        try {
          this.entries = (await this.source.history(0, HISTORY_PAGE)).jobs;
        } catch {
          // The server is unreachable: keep what is listed; the next job end tries again.
        }
        this.rebuild();
      } while (this.again);
    })().finally(() => {
      this.loading = null;
    });
    return this.loading;
  }

  /** The graph of the newest job that produced this image. */
  async jobOf(url: string): Promise<JobRecord | undefined> {
    const image = this.images.get().find((i) => i.url === url);
    return image ? this.jobOfImage(image) : undefined;
  }

  /** The job an image of the gallery came from, with its graph (asked of the server once). */
  async jobOfImage(image: GalleryImage): Promise<JobRecord | undefined> {
    const known = this.jobs.get(image.jobId);
    if (known) return known;
    try {
      const detail = await this.source.job(image.jobId);
      const record = { graph: detail.graph, graphLabel: image.graphLabel };
      this.jobs.set(image.jobId, record);
      return record;
    } catch {
      return undefined; // dropped from the history meanwhile
    }
  }

  /** Takes images off this browser's list (the jobs stay in the server's history). */
  remove(keys: Iterable<string>): void {
    this.ui = { ...this.ui, hidden: [...new Set([...this.ui.hidden, ...keys])] };
    this.save();
    this.rebuild();
  }

  /** Empties this browser's list; later results are listed again. */
  clear(): void {
    const newest = Math.max(0, ...this.entries.map((e) => e.finishedAt ?? e.createdAt));
    this.ui = { hidden: [], clearedAt: Math.max(this.ui.clearedAt, newest) };
    this.save();
    this.rebuild();
  }

  private rebuild(): void {
    const hidden = new Set(this.ui.hidden);
    const seen = new Set<string>();
    const list: GalleryImage[] = [];
    for (const entry of this.entries) {
      const at = entry.finishedAt ?? entry.createdAt;
      if (at <= this.ui.clearedAt || !entry.results || !entry.outputTitles) continue;
      const graphLabel = this.jobs.get(entry.id)?.graphLabel ?? entry.title ?? 'Untitled graph';
      const ofJob: GalleryImage[] = [];
      for (const [nodeId, result] of Object.entries(entry.results)) {
        const title = entry.outputTitles[nodeId];
        if (title === undefined) continue; // not an output node (a mask thumbnail, ...)
        for (const img of result.images ?? []) {
          // Results are named by content: the same picture from an older (cached) run is listed once, with the newer run.
          if (seen.has(`${nodeId}|${img.url}`)) continue;
          seen.add(`${nodeId}|${img.url}`);
          const key = `${entry.id}:${nodeId}:${img.url}`;
          if (!hidden.has(key))
            ofJob.push({ key, jobId: entry.id, nodeId, title, graphLabel, url: img.url, name: img.name, width: img.width, height: img.height, at });
        }
      }
      // Newest first: within a run, the output that finished last comes first.
      list.push(...ofJob.reverse());
    }
    this.images.set(list.slice(0, MAX_IMAGES));
  }

  private load(): UiState {
    try {
      this.storage?.removeItem('dualstyle.gallery.v1'); // the list itself lived here before the server kept it
      const raw = this.storage?.getItem(UI_KEY);
      const data = raw ? (JSON.parse(raw) as Partial<UiState>) : {};
      return {
        hidden: Array.isArray(data.hidden) ? data.hidden.filter((k) => typeof k === 'string') : [],
        clearedAt: typeof data.clearedAt === 'number' ? data.clearedAt : 0,
      };
    } catch {
      return { hidden: [], clearedAt: 0 };
    }
  }

  private save(): void {
    // Keys of images no longer in the history need not be kept.
    const listed = new Set(this.entries.map((e) => e.id));
    const hidden = this.ui.hidden.filter((k) => listed.has(k.split(':')[0]!));
    try {
      this.storage?.setItem(UI_KEY, JSON.stringify({ hidden, clearedAt: this.ui.clearedAt }));
    } catch {
      // Storage full or disabled: the choice holds until the page is closed.
    }
  }
}

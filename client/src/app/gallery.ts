/**
 * The result gallery: final images of the runs of this browser, newest first, each with the graph
 * that made it (so its PNG download carries that graph, not whatever the canvas holds by then).
 * Kept in localStorage, like the results on the server, so a reload does not empty it.
 */
import type { Graph } from '../../../server/protocol/graph.ts';
import type { NodeResult } from '../../../server/protocol/events.ts';
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
  /** When the image arrived (ms since epoch). */
  at: number;
}

/** What the app knew about a job when it submitted it. */
export interface JobRecord {
  graph: Graph;
  graphLabel: string;
  /** Output node id → title; results of other nodes (mask thumbnails, ...) are not gallery material. */
  outputs: Record<string, string>;
}

const KEY = 'dualstyle.gallery.v1';
const MAX_IMAGES = 48;

interface Stored {
  images: GalleryImage[];
  jobs: Record<string, JobRecord>;
}

class Gallery {
  readonly images = new Observable<GalleryImage[]>([]);
  private jobs = new Map<string, JobRecord>();

  constructor() {
    const stored = load();
    if (stored) {
      this.jobs = new Map(Object.entries(stored.jobs));
      this.images.set(stored.images.filter((i) => this.jobs.has(i.jobId)));
    }
  }

  /** Called before the job's events are followed (they may already have arrived). */
  recordJob(jobId: string, record: JobRecord): void {
    this.jobs.set(jobId, record);
  }

  addResult(jobId: string, nodeId: string, result: NodeResult | undefined): void {
    const job = this.jobs.get(jobId);
    const title = job?.outputs[nodeId];
    if (!job || title === undefined || !result?.images?.length) return;
    let list = this.images.get();
    const at = Date.now();
    for (const img of result.images) {
      const key = `${jobId}:${nodeId}:${img.url}`;
      if (list.some((i) => i.key === key)) continue;
      // Results are named by content: the same picture from a later (cached) run replaces the
      // older entry instead of piling up copies, and keeps the newer graph.
      list = list.filter((i) => !(i.url === img.url && i.nodeId === nodeId));
      list = [{ key, jobId, nodeId, title, graphLabel: job.graphLabel, url: img.url, name: img.name, width: img.width, height: img.height, at }, ...list];
    }
    this.commit(list.slice(0, MAX_IMAGES));
  }

  /** The graph of the newest job that produced this image, if this browser ran it. */
  jobOf(url: string): JobRecord | undefined {
    const entry = this.images.get().find((i) => i.url === url);
    return entry ? this.jobs.get(entry.jobId) : undefined;
  }

  /** The job an image of the gallery came from. */
  jobOfImage(image: GalleryImage): JobRecord | undefined {
    return this.jobs.get(image.jobId);
  }

  remove(keys: Iterable<string>): void {
    const drop = new Set(keys);
    this.commit(this.images.get().filter((i) => !drop.has(i.key)));
  }

  clear(): void {
    this.commit([]);
  }

  private commit(list: GalleryImage[]): void {
    this.images.set(list);
    // Only jobs an image refers to are stored (in memory, jobs still running are kept too).
    const used = new Set(list.map((i) => i.jobId));
    const jobs: Record<string, JobRecord> = {};
    for (const [id, job] of this.jobs) if (used.has(id)) jobs[id] = job;
    try {
      localStorage.setItem(KEY, JSON.stringify({ images: list, jobs } satisfies Stored));
    } catch {
      // Storage full or disabled: the gallery still works until the page is closed.
    }
  }
}

function load(): Stored | null {
  try {
    const raw = typeof localStorage === 'undefined' ? null : localStorage.getItem(KEY);
    if (!raw) return null;
    const data = JSON.parse(raw) as Partial<Stored>;
    if (!Array.isArray(data.images) || !data.jobs || typeof data.jobs !== 'object') return null;
    return { images: data.images, jobs: data.jobs };
  } catch {
    return null;
  }
}

export const gallery = new Gallery();

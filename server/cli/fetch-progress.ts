/**
 * Renders fetch-model events: on a terminal, one redrawn line with the current file's and the total
 * progress, speed and ETA; elsewhere (CI logs, pipes), plain lines at file starts, every 25 % of a
 * large file and at file ends, so logs stay short.
 */
import type { FetchEvent, HubFile } from '../models/hub.ts';

export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v >= 100 ? 0 : 1)} ${units[u]}`;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function bar(fraction: number, width: number): string {
  const filled = Math.max(0, Math.min(width, Math.round(fraction * width)));
  return '█'.repeat(filled) + '░'.repeat(width - filled);
}

export interface FetchProgress {
  onEvent(e: FetchEvent): void;
  /** Ends a redrawn line so that following output starts on a fresh one. */
  finish(): void;
}

export function createFetchProgress(out: ProgressStream, now: () => number = () => performance.now()): FetchProgress {
  return new FetchProgressView(out, now);
}

/** The file being fetched, and how far. */
interface CurrentFile {
  file: HubFile;
  index: number;
  count: number;
  received: number;
  lastPct: number;
}

class FetchProgressView implements FetchProgress {
  private readonly tty: boolean;
  private totalBytes = 0;
  private doneBytes = 0; // bytes of finished (or skipped) files
  private current: CurrentFile | null = null;
  private count = 0;
  // Speed over the bytes moved in this run (skipped files do not count), smoothed over a window.
  private movedBytes = 0;
  private readonly samples: Array<{ t: number; bytes: number }> = [];
  private lastDraw = 0;
  private lineOpen = false;

  constructor(
    private readonly out: ProgressStream,
    private readonly now: () => number,
  ) {
    this.tty = out.isTTY === true;
  }

  onEvent(e: FetchEvent): void {
    switch (e.kind) {
      case 'listed':
        this.totalBytes = e.totalBytes;
        this.count = e.files.length;
        this.line(`fetch-model: ${e.repo}@${e.revision}: ${e.files.length} files, ${formatBytes(e.totalBytes)}`);
        this.sample();
        break;
      case 'file-start':
        this.fileStarted(e);
        break;
      case 'file-progress':
        this.fileProgress(e);
        break;
      case 'file-done':
        this.doneBytes += e.bytes;
        if (e.skipped) {
          this.line(`${e.file.path}: already complete (${formatBytes(e.bytes)}), skipped`);
        } else {
          this.line(`${e.file.path}: done (${formatBytes(e.bytes)})`);
        }
        this.current = null;
        break;
      case 'retry':
        this.line(`${e.file.path}: ${e.reason}; retry ${e.attempt}`);
        break;
      case 'verifying':
        this.line(`checking sha256 of ${e.file.path}`);
        break;
    }
  }

  finish(): void {
    if (this.lineOpen) {
      this.out.write('\n');
      this.lineOpen = false;
    }
  }

  private fileStarted(e: Extract<FetchEvent, { kind: 'file-start' }>): void {
    this.current = { file: e.file, index: e.index, count: e.count, received: e.resumeFrom, lastPct: 0 };
    this.count = e.count;
    if (e.resumeFrom > 0) {
      this.line(`[${e.index + 1}/${e.count}] ${e.file.path}: resuming at ${formatBytes(e.resumeFrom)}`);
    } else if (!this.tty) {
      this.line(`[${e.index + 1}/${e.count}] ${e.file.path} (${e.file.size !== undefined ? formatBytes(e.file.size) : 'size unknown'})`);
    }
    if (this.tty) this.draw(true);
  }

  /** On a terminal the line is redrawn; elsewhere a large file gets a line every 25 %. */
  private fileProgress(e: Extract<FetchEvent, { kind: 'file-progress' }>): void {
    const current = this.current;
    if (!current || current.file !== e.file) return;
    this.movedBytes += e.received - current.received;
    current.received = e.received;
    this.sample();
    if (this.tty) {
      this.draw(false);
    } else if (e.total && e.total >= 64 * 1024 * 1024) {
      const pct = Math.floor((100 * e.received) / e.total / 25) * 25;
      if (pct > current.lastPct && pct < 100) {
        current.lastPct = pct;
        const v = this.speed();
        this.line(
          `  ${e.file.path}: ${pct}% of ${formatBytes(e.total)}, ${formatBytes(v)}/s, ETA ${formatDuration(v > 0 ? (this.totalBytes - this.doneBytes - e.received) / v : NaN)}`,
        );
      }
    }
  }

  private speed(): number {
    const samples = this.samples;
    if (samples.length < 2) return 0;
    const a = samples[0]!;
    const b = samples[samples.length - 1]!;
    const dt = (b.t - a.t) / 1000;
    return dt > 0 ? (b.bytes - a.bytes) / dt : 0;
  }

  private sample(): void {
    const t = this.now();
    this.samples.push({ t, bytes: this.movedBytes });
    while (this.samples.length > 2 && t - this.samples[0]!.t > 5000) this.samples.shift();
  }

  private line(s: string): void {
    if (this.lineOpen) {
      this.out.write('\r\x1b[2K');
      this.lineOpen = false;
    }
    this.out.write(s + '\n');
  }

  private draw(force: boolean): void {
    if (!this.current) return;
    const t = this.now();
    if (!force && t - this.lastDraw < 100) return;
    this.lastDraw = t;
    const { file, index, received } = this.current;
    const totalSoFar = this.doneBytes + received;
    const v = this.speed();
    const eta = v > 0 ? (this.totalBytes - totalSoFar) / v : NaN;
    const filePart = file.size ? `${bar(received / file.size, 20)} ${((100 * received) / file.size).toFixed(0).padStart(3)}%` : formatBytes(received);
    const totalPart = this.totalBytes > 0 ? `total ${formatBytes(totalSoFar)}/${formatBytes(this.totalBytes)}` : `total ${formatBytes(totalSoFar)}`;
    const text = `[${index + 1}/${this.count}] ${file.path} ${filePart} | ${totalPart} | ${formatBytes(v)}/s | ETA ${formatDuration(eta)}`;
    const width = this.out.columns && this.out.columns > 20 ? this.out.columns - 1 : 200;
    this.out.write('\r\x1b[2K' + (text.length > width ? text.slice(0, width) : text));
    this.lineOpen = true;
  }
}

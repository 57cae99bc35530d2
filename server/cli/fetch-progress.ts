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
  const tty = out.isTTY === true;
  let totalBytes = 0;
  let doneBytes = 0; // bytes of finished (or skipped) files
  let current: { file: HubFile; index: number; count: number; received: number; lastPct: number } | null = null;
  let count = 0;
  // Speed over the bytes moved in this run (skipped files do not count), smoothed over a window.
  let movedBytes = 0;
  const samples: Array<{ t: number; bytes: number }> = [];
  let lastDraw = 0;
  let lineOpen = false;

  const speed = (): number => {
    if (samples.length < 2) return 0;
    const a = samples[0]!;
    const b = samples[samples.length - 1]!;
    const dt = (b.t - a.t) / 1000;
    return dt > 0 ? (b.bytes - a.bytes) / dt : 0;
  };
  const sample = (): void => {
    const t = now();
    samples.push({ t, bytes: movedBytes });
    while (samples.length > 2 && t - samples[0]!.t > 5000) samples.shift();
  };

  const line = (s: string): void => {
    if (lineOpen) {
      out.write('\r\x1b[2K');
      lineOpen = false;
    }
    out.write(s + '\n');
  };

  const draw = (force: boolean): void => {
    if (!current) return;
    const t = now();
    if (!force && t - lastDraw < 100) return;
    lastDraw = t;
    const { file, index, received } = current;
    const totalSoFar = doneBytes + received;
    const v = speed();
    const eta = v > 0 ? (totalBytes - totalSoFar) / v : NaN;
    const filePart = file.size ? `${bar(received / file.size, 20)} ${((100 * received) / file.size).toFixed(0).padStart(3)}%` : formatBytes(received);
    const totalPart = totalBytes > 0 ? `total ${formatBytes(totalSoFar)}/${formatBytes(totalBytes)}` : `total ${formatBytes(totalSoFar)}`;
    const text = `[${index + 1}/${count}] ${file.path} ${filePart} | ${totalPart} | ${formatBytes(v)}/s | ETA ${formatDuration(eta)}`;
    const width = out.columns && out.columns > 20 ? out.columns - 1 : 200;
    out.write('\r\x1b[2K' + (text.length > width ? text.slice(0, width) : text));
    lineOpen = true;
  };

  return {
    onEvent(e) {
      switch (e.kind) {
        case 'listed':
          totalBytes = e.totalBytes;
          count = e.files.length;
          line(`fetch-model: ${e.repo}@${e.revision}: ${e.files.length} files, ${formatBytes(e.totalBytes)}`);
          sample();
          break;
        case 'file-start':
          current = { file: e.file, index: e.index, count: e.count, received: e.resumeFrom, lastPct: 0 };
          count = e.count;
          if (e.resumeFrom > 0) {
            line(`[${e.index + 1}/${e.count}] ${e.file.path}: resuming at ${formatBytes(e.resumeFrom)}`);
          } else if (!tty) {
            line(`[${e.index + 1}/${e.count}] ${e.file.path} (${e.file.size !== undefined ? formatBytes(e.file.size) : 'size unknown'})`);
          }
          if (tty) draw(true);
          break;
        case 'file-progress': {
          if (!current || current.file !== e.file) break;
          movedBytes += e.received - current.received;
          current.received = e.received;
          sample();
          if (tty) {
            draw(false);
          } else if (e.total && e.total >= 64 * 1024 * 1024) {
            const pct = Math.floor((100 * e.received) / e.total / 25) * 25;
            if (pct > current.lastPct && pct < 100) {
              current.lastPct = pct;
              const v = speed();
              line(
                `  ${e.file.path}: ${pct}% of ${formatBytes(e.total)}, ${formatBytes(v)}/s, ETA ${formatDuration(v > 0 ? (totalBytes - doneBytes - e.received) / v : NaN)}`,
              );
            }
          }
          break;
        }
        case 'file-done':
          doneBytes += e.bytes;
          if (e.skipped) {
            line(`${e.file.path}: already complete (${formatBytes(e.bytes)}), skipped`);
          } else {
            line(`${e.file.path}: done (${formatBytes(e.bytes)})`);
          }
          current = null;
          break;
        case 'retry':
          line(`${e.file.path}: ${e.reason}; retry ${e.attempt}`);
          break;
        case 'verifying':
          line(`checking sha256 of ${e.file.path}`);
          break;
      }
    },
    finish() {
      if (lineOpen) {
        out.write('\n');
        lineOpen = false;
      }
    },
  };
}

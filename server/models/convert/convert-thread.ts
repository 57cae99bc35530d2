/**
 * Conversions on a thread of their own. Converting an SD 1.5 checkpoint is ~50 s of synchronous CPU
 * (graphs built, weights read, cast and written tensor by tensor); on the studio's main thread that held
 * every socket and HTTP request for as long. Here each conversion runs in a worker thread
 * (convert-thread.worker.mjs → convert-job.ts), which sends its progress and log lines back. The sources
 * are opened here first (a cheap header read), so a bad file is refused before any thread starts.
 *
 * Cancelling terminates the worker and removes the temporary folder it was writing; a conversion reaches
 * the cache only by the rename of a whole folder (index.ts), so a cancelled one leaves nothing there.
 * Concurrent callers of one conversion share it; it is stopped when the last of them cancels.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { CancelledError, UserError } from '../../engine/errors.ts';
import { convertedPath, isConverted, type ConvertOptions } from './index.ts';
import { ConversionError } from './weights.ts';

/** What a conversion thread is given: options without callbacks (they cannot cross threads). */
export interface ConvertRequest {
  source: string;
  options: Omit<ConvertOptions, 'log' | 'progress' | 'writingTo'>;
}

/** What a conversion thread tells the thread that started it. */
export type ConvertMessage =
  | { type: 'progress'; fraction: number }
  | { type: 'log'; line: string }
  | { type: 'temp'; dir: string }
  | { type: 'done'; dir: string }
  | { type: 'failed'; name: string; message: string; user: boolean; field?: string };

interface Listener {
  log?: (line: string) => void;
  progress?: (fraction: number) => void;
}

interface Conversion {
  listeners: Set<Listener>;
  /** Settles once the thread has ended and its temporary folder is gone. */
  done: Promise<string>;
  stop(): void;
}

const running = new Map<string, Conversion>();

/**
 * The converted folder of `source`, as ensureConverted gives it, converted on a worker thread when it is
 * not cached yet. Aborting `signal` rejects with CancelledError once nothing of the conversion is left on disk.
 */
export async function convertOffThread(source: string, options: ConvertOptions & { signal?: AbortSignal } = {}): Promise<string> {
  const { signal, log, progress, writingTo: _writingTo, ...plain } = options;
  if (signal?.aborted) throw new CancelledError();
  const dir = convertedPath(source, plain);
  if (isConverted(dir)) return dir;
  let conversion = running.get(dir);
  if (!conversion) {
    conversion = start({ source: path.resolve(source), options: plain }, dir);
    running.set(dir, conversion);
  }
  return follow(conversion, { log, progress }, signal);
}

function start(request: ConvertRequest, dir: string): Conversion {
  const worker = new Worker(new URL('./convert-thread.worker.mjs', import.meta.url), { workerData: request });
  const listeners = new Set<Listener>();
  // Every folder the thread began writing: a LoRA's merge first converts the plain model (base-weights.ts).
  const temps: string[] = [];
  let stopped = false;
  const ended = new Promise<string>((resolve, reject) => {
    worker.on('message', (m: ConvertMessage) => {
      if (m.type === 'progress') for (const l of listeners) l.progress?.(m.fraction);
      else if (m.type === 'log') for (const l of listeners) l.log?.(m.line);
      else if (m.type === 'temp') temps.push(m.dir);
      else if (m.type === 'done') resolve(m.dir);
      else reject(rebuilt(m));
    });
    worker.on('error', (e) => reject(new Error(`the conversion thread failed: ${e.message}`, { cause: e })));
    // After 'done' or 'failed' this rejection is a no-op: the promise is settled.
    worker.on('exit', (code) => reject(stopped ? new CancelledError() : new Error(`the conversion thread stopped (exit code ${code})`)));
  });
  const done = ended.finally(async () => {
    running.delete(dir);
    await Promise.all(temps.map((temp) => rm(temp, { recursive: true, force: true })));
  });
  // Followers see the outcome through follow(); this keeps an unfollowed rejection from being unhandled.
  done.catch(() => {});
  return {
    listeners,
    done,
    stop: () => {
      stopped = true;
      void worker.terminate();
    },
  };
}

/** Waits for `conversion` on behalf of one caller, who may cancel; the last caller to cancel stops it. */
function follow(conversion: Conversion, listener: Listener, signal: AbortSignal | undefined): Promise<string> {
  conversion.listeners.add(listener);
  return new Promise<string>((resolve, reject) => {
    const leave = () => {
      conversion.listeners.delete(listener);
      signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = () => {
      leave();
      if (conversion.listeners.size > 0) return reject(new CancelledError());
      conversion.stop();
      // Rejected once the thread is gone and its folder removed, whatever the thread's last word was.
      conversion.done.then(
        () => reject(new CancelledError()),
        () => reject(new CancelledError()),
      );
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    conversion.done.then(
      (dir) => {
        leave();
        resolve(dir);
      },
      (error: unknown) => {
        leave();
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/** The error a thread reported, as this thread's class: the nodes tell a user's error from a bug by it. */
function rebuilt(m: Extract<ConvertMessage, { type: 'failed' }>): Error {
  if (m.name === 'ConversionError') return new ConversionError(m.message);
  if (m.user) return Object.assign(new UserError(m.message, m.field), { name: m.name });
  return Object.assign(new Error(m.message), { name: m.name });
}

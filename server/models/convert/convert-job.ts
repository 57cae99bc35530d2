/**
 * The body of a conversion thread (convert-thread.ts): converts one model with ensureConverted, and tells
 * the thread that started it the temporary folder it writes into, its progress (at most once per
 * permille), its log lines, and how it ended. It runs once and exits.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { UserError } from '../../engine/errors.ts';
import type { ConvertMessage, ConvertRequest } from './convert-thread.ts';
import { ensureConverted } from './index.ts';

const port = parentPort;
if (!port) throw new Error('convert-job.ts runs in a conversion thread (convert-thread.ts), not on its own');
const post = (message: ConvertMessage) => port.postMessage(message);
const { source, options } = workerData as ConvertRequest;

let shown = -1;
try {
  const dir = await ensureConverted(source, {
    ...options,
    log: (line) => post({ type: 'log', line }),
    progress: (fraction) => {
      const permille = Math.floor(fraction * 1000);
      if (permille <= shown) return;
      shown = permille;
      post({ type: 'progress', fraction });
    },
    writingTo: (temp) => post({ type: 'temp', dir: temp }),
  });
  post({ type: 'done', dir });
} catch (error) {
  const e = error instanceof Error ? error : new Error(String(error));
  post({ type: 'failed', name: e.name, message: e.message, ...(e instanceof UserError ? { user: true, field: e.field } : { user: false }) });
}

/**
 * Result files of output nodes (saved images, mask thumbnails): PNGs named by content,
 * `<prefix>-<sha256, first 16 hex digits>.png`, so re-running an unchanged graph does not pile up copies,
 * written atomically into <data>/results and served at /api/results/<name>.
 */
import { createHash } from 'node:crypto';
import { writeFileAtomic } from '../util/atomic.ts';
import { noSpaceError } from './errors.ts';
import { resolveInside, resultsDir } from './paths.ts';

export interface SavedResult {
  name: string;
  url: string;
}

export type ResultSink = (prefix: string, png: Buffer) => Promise<SavedResult>;

export function resultSink(dataDir: string): ResultSink {
  return async (prefix, png) => {
    const name = `${prefix}-${createHash('sha256').update(png).digest('hex').slice(0, 16)}.png`;
    try {
      await writeFileAtomic(resolveInside(resultsDir(dataDir), name), png);
    } catch (err) {
      throw noSpaceError(err, 'the result image');
    }
    return { name, url: `/api/results/${encodeURIComponent(name)}` };
  };
}

/**
 * Where user data lives under the data folder, and the one rule for names that reach the disk.
 * Nodes reach these files only through the executor (ctx.saveResult, services.readUpload), so the
 * files they read and write are the files the HTTP API serves.
 */
import path from 'node:path';

export function uploadsDir(dataDir: string): string {
  return path.join(dataDir, 'uploads');
}

export function resultsDir(dataDir: string): string {
  return path.join(dataDir, 'results');
}

export function userGraphsDir(dataDir: string): string {
  return path.join(dataDir, 'graphs');
}

/** The index of the saved graphs (names, titles, sizes), so listing them parses nothing. */
export function graphsIndexFile(dataDir: string): string {
  return path.join(dataDir, '.graphs-index.json');
}

export { isSafeName, MAX_FILE_NAME_LENGTH, MAX_NAME_LENGTH } from '../protocol/names.ts';

/**
 * Joins a checked name to a folder and asserts the result is still directly inside that folder.
 * The name rule already forbids separators; this is defence in depth against a rule that one day
 * gets looser.
 */
export function resolveInside(dir: string, fileName: string): string {
  const root = path.resolve(dir);
  const full = path.resolve(root, fileName);
  if (path.dirname(full) !== root) {
    throw new Error(`path escapes its folder: ${JSON.stringify(fileName)}`);
  }
  return full;
}

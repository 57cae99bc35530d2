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

export const MAX_NAME_LENGTH = 64;
/** Stored files (uploads, results) are named by a 64-hex-digit hash plus an extension. */
export const MAX_FILE_NAME_LENGTH = 128;
const NAME_CHARS = /^[A-Za-z0-9 _.-]+$/;

/**
 * A file or graph name a user may choose: 1–64 characters (`maxLength`) of letters, digits, space, "_", "-", ".",
 * not starting with a dot (no hidden files, no "." or "..") and containing no "..".
 */
export function isSafeName(name: unknown, maxLength = MAX_NAME_LENGTH): name is string {
  return (
    typeof name === 'string' &&
    name.length >= 1 &&
    name.length <= maxLength &&
    NAME_CHARS.test(name) &&
    !name.startsWith('.') &&
    !name.includes('..') &&
    name.trim() === name
  );
}

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

/**
 * The one rule for names that reach the disk (saved graphs, uploads, results): also what Load Image
 * checks its file name against when a graph is validated, before any job runs.
 */

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

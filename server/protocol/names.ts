/**
 * The one rule for names that reach the disk (saved graphs, uploads, results): also what Load Image
 * checks its file name against when a graph is validated, before any job runs, and what the editor
 * says while a user types a graph's name.
 */

export const MAX_NAME_LENGTH = 64;
/** Stored files (uploads, results) are named by a 64-hex-digit hash plus an extension. */
export const MAX_FILE_NAME_LENGTH = 128;
const NAME_CHARS = /^[A-Za-z0-9 _.-]+$/;

/**
 * What is wrong with a name a user chose (`what` is its subject, e.g. "A graph name"), or null: 1–64
 * characters (`maxLength`) of letters, digits, space, "_", "-", ".", not starting with a dot (no hidden
 * files, no "." or "..") and containing no "..".
 */
export function nameProblem(name: string, what = 'A name', maxLength = MAX_NAME_LENGTH): string | null {
  if (name.length === 0) return `${what} must not be empty.`;
  if (name.length > maxLength) return `${what} may have at most ${maxLength} characters.`;
  if (!NAME_CHARS.test(name)) return `${what} may use letters, digits, spaces, "_", "-" and "." only.`;
  if (name.startsWith('.') || name.includes('..')) return `${what} may not start with "." or contain "..".`;
  if (name.trim() !== name) return `${what} may not start or end with a space.`;
  return null;
}

export function isSafeName(name: unknown, maxLength = MAX_NAME_LENGTH): name is string {
  return typeof name === 'string' && nameProblem(name, 'A name', maxLength) === null;
}

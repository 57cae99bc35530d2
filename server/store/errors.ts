/** Errors of the storage layer; the HTTP layer maps each code to a status. */
export type StoreErrorCode =
  | 'invalid_name'
  | 'not_found'
  | 'read_only'
  | 'corrupt'
  | 'invalid_graph'
  | 'unsupported_image'
  | 'image_too_large'
  /** A quota of the data folder (saved graphs, uploads) is used up. */
  | 'quota_exceeded'
  /** The disk (or the user's disk quota) holding the data folder is full. */
  | 'no_space';

export class StoreError extends Error {
  constructor(
    readonly code: StoreErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

export const INVALID_NAME_MESSAGE = 'invalid graph name: use 1–64 letters, digits, spaces, "_", "-" or "." (no leading dot, no "..", no slashes)';

/**
 * ENOSPC / EDQUOT from a write, or SQLite's SQLITE_FULL ("database or disk is full"): the disk is full;
 * anything else is passed through unchanged.
 */
export function noSpaceError(err: unknown, what: string): unknown {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code !== 'ENOSPC' && code !== 'EDQUOT' && code !== 'SQLITE_FULL') return err;
  return new StoreError('no_space', `cannot save ${what}: the disk holding the data folder is full; free some space and try again (nothing was changed)`);
}

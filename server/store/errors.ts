/** Errors of the storage layer; the HTTP layer maps each code to a status. */
export type StoreErrorCode =
  | 'invalid_name'
  | 'not_found'
  | 'read_only'
  | 'corrupt'
  | 'invalid_graph'
  | 'unsupported_image'
  | 'image_too_large';

export class StoreError extends Error {
  constructor(
    readonly code: StoreErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

export const INVALID_NAME_MESSAGE =
  'invalid graph name: use 1–64 letters, digits, spaces, "_", "-" or "." (no leading dot, no "..", no slashes)';

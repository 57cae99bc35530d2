/** The engine's two kinds of expected failure; anything else is a bug and is logged with its stack. */

/** The job was cancelled; thrown between sampler steps. Reported as a cancellation, not a failure. */
export class CancelledError extends Error {
  constructor() {
    super('cancelled');
    this.name = 'CancelledError';
  }
}

/**
 * An error whose message is meant for the user as is (bad input, missing file, NaN at step k).
 * `field` names the parameter or input it is about, when there is one.
 */
export class UserError extends Error {
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'UserError';
  }
}

/**
 * Token guessing, slowed per client address: after `maxWrong` wrong tokens within `windowMs`, every
 * token attempt from that address (HTTP and socket) is refused until the oldest of those tries leaves
 * the window. Without it, 2,000 guesses a second were answered. The clock is injectable so tests count
 * tries instead of waiting.
 */

export interface GuessLimitOptions {
  /** Wrong tokens an address may send within the window (default 10). */
  maxWrong?: number;
  /** The window, in milliseconds (default one minute). */
  windowMs?: number;
  /** Most addresses remembered; the longest quiet ones are forgotten first (default 10,000). */
  maxAddresses?: number;
  now?: () => number;
}

export class GuessLimiter {
  private readonly maxWrong: number;
  private readonly windowMs: number;
  private readonly maxAddresses: number;
  private readonly now: () => number;
  /** Per address, the times of its recent wrong tries, oldest first (at most maxWrong of them). */
  private readonly wrong = new Map<string, number[]>();

  constructor(opts: GuessLimitOptions = {}) {
    this.maxWrong = opts.maxWrong ?? 10;
    this.windowMs = opts.windowMs ?? 60_000;
    this.maxAddresses = opts.maxAddresses ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  /** Seconds until `address` may try again, or 0 when it may try now. */
  retryAfterSeconds(address: string): number {
    const tries = this.recent(address);
    if (tries.length < this.maxWrong) return 0;
    return Math.max(1, Math.ceil((tries[0]! + this.windowMs - this.now()) / 1000));
  }

  /** Records a wrong token from `address`. */
  recordWrong(address: string): void {
    const tries = this.recent(address);
    tries.push(this.now());
    if (tries.length > this.maxWrong) tries.shift();
    // Re-inserted last: the Map's order is then least recently wrong first.
    this.wrong.delete(address);
    this.wrong.set(address, tries);
    while (this.wrong.size > this.maxAddresses) this.wrong.delete(this.wrong.keys().next().value!);
  }

  /** The address's wrong tries still inside the window (older ones are dropped). */
  private recent(address: string): number[] {
    const tries = this.wrong.get(address);
    if (!tries) return [];
    const since = this.now() - this.windowMs;
    while (tries.length > 0 && tries[0]! <= since) tries.shift();
    if (tries.length === 0) this.wrong.delete(address);
    return tries;
  }
}

/** The message for a refused address. */
export function tooManyGuessesMessage(retryAfter: number): string {
  return `too many wrong access tokens from this address: try again in ${retryAfter} s`;
}

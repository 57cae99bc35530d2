/**
 * Per-job ordered delivery of socket events. Most events are ready at once; a preview frame becomes
 * ready when its encoding finishes. Events leave in the order they were produced, so a client never
 * sees a node's preview after its node:done, and the sampler never waits for an encoder.
 */
export class OrderedOutbox<E> {
  private tail: Promise<void> = Promise.resolve();

  constructor(private readonly deliver: (event: E) => void) {}

  /** Queues an event, or a promise of one (a rejection means "drop it"). */
  push(event: E | Promise<E>): void {
    this.tail = this.tail
      .then(() => event)
      .then(
        (ready) => this.deliver(ready),
        () => {
          /* a frame that failed to encode is dropped, not fatal */
        },
      );
  }

  /** Resolves once everything pushed so far has been delivered (or dropped). */
  flushed(): Promise<void> {
    return this.tail;
  }
}

/**
 * A node's run context for tests that call a node's `run` directly (no executor): no results, no
 * previews, a silent log; `overrides` replaces what a test watches (progress, warnings).
 */
import type { NodeContext, Services } from '../../nodes/types.ts';

export function nodeContext(services: Services, overrides: Partial<NodeContext> = {}): NodeContext {
  const noop = () => undefined;
  return {
    jobId: 'j',
    nodeId: 'n',
    signal: new AbortController().signal,
    progress: noop,
    previewDue: () => false,
    preview: noop,
    warn: noop,
    saveResult: () => Promise.reject(new Error('no results here')),
    log: { debug: noop, info: noop, warn: noop, error: noop },
    services,
    ...overrides,
  };
}

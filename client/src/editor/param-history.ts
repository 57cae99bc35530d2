/**
 * Undo/redo of what rete-history-plugin does not record: parameter edits (with the title a preset
 * change renames), node modes, titles, frames and reroute points. Typing into one field coalesces
 * into a single action while the edits keep coming (less than COALESCE_MS apart).
 */
import type { HistoryAction, HistoryPlugin } from 'rete-history-plugin';
import type { Schemes } from './schemes.ts';

export const COALESCE_MS = 1200;

/** An action from its two directions. */
export class FnAction implements HistoryAction {
  constructor(
    readonly undo: () => void | Promise<void>,
    readonly redo: () => void | Promise<void>,
  ) {}
}

export class ParamChangeAction implements HistoryAction {
  constructor(
    readonly nodeId: string,
    readonly param: string,
    readonly before: unknown,
    public after: unknown,
    private readonly apply: (nodeId: string, param: string, value: unknown) => void,
    /** Typing: later keystrokes in the field extend this action. A pick (a preset, a checkbox) stands alone. */
    readonly typing = false,
  ) {}

  undo(): void {
    this.apply(this.nodeId, this.param, this.before);
  }

  redo(): void {
    this.apply(this.nodeId, this.param, this.after);
  }
}

/** Records one action as its own undo step (the plugin otherwise merges actions close in time). */
export function recordAction(history: HistoryPlugin<Schemes>, action: HistoryAction): void {
  history.separate();
  history.add(action);
  history.separate();
}

/**
 * Records `before → after` of one parameter. With `coalesce`, a follow-up edit of the same field
 * extends the latest action instead of adding one, so Ctrl+Z undoes a whole word, not a letter.
 */
export function recordParamChange(
  history: HistoryPlugin<Schemes>,
  change: { nodeId: string; param: string; before: unknown; after: unknown; coalesce: boolean },
  apply: (nodeId: string, param: string, value: unknown) => void,
): void {
  const records = history.getHistorySnapshot();
  const last = records[records.length - 1];
  if (
    change.coalesce &&
    last &&
    last.action instanceof ParamChangeAction &&
    last.action.typing &&
    last.action.nodeId === change.nodeId &&
    last.action.param === change.param &&
    Date.now() - last.time < COALESCE_MS
  ) {
    last.action.after = change.after;
    last.time = Date.now();
    return;
  }
  recordAction(history, new ParamChangeAction(change.nodeId, change.param, change.before, change.after, apply, change.coalesce));
}

/**
 * Runs `fn` without recording what it does: moves the studio makes by itself (a grown node pushing
 * its neighbours) are not the user's to undo. The plugin's own undo and redo use this same flag.
 */
export async function untracked(history: HistoryPlugin<Schemes>, fn: () => Promise<void>): Promise<void> {
  const inner = (history as unknown as { history: { active: boolean } }).history;
  const was = inner.active;
  inner.active = true;
  try {
    await fn();
  } finally {
    inner.active = was;
  }
}

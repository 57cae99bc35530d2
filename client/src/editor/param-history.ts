/**
 * Undo/redo of parameter edits. rete-history-plugin only records structure (nodes, connections,
 * moves), so a parameter change is our own history action. Typing into one field coalesces into a
 * single action while the edits keep coming (less than COALESCE_MS apart).
 */
import type { HistoryAction, HistoryPlugin } from 'rete-history-plugin';
import type { Schemes } from './schemes.ts';

export const COALESCE_MS = 1200;

export class ParamChangeAction implements HistoryAction {
  constructor(
    readonly nodeId: string,
    readonly param: string,
    readonly before: unknown,
    public after: unknown,
    private readonly apply: (nodeId: string, param: string, value: unknown) => void,
  ) {}

  undo(): void {
    this.apply(this.nodeId, this.param, this.before);
  }

  redo(): void {
    this.apply(this.nodeId, this.param, this.after);
  }
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
    last.action.nodeId === change.nodeId &&
    last.action.param === change.param &&
    Date.now() - last.time < COALESCE_MS
  ) {
    last.action.after = change.after;
    last.time = Date.now();
    return;
  }
  // Separate from whatever came before and after: the plugin otherwise merges actions that happen
  // within its `timing` window into one undo step.
  history.separate();
  history.add(new ParamChangeAction(change.nodeId, change.param, change.before, change.after, apply));
  history.separate();
}

/**
 * Simple mode's fields, chosen on the canvas: a node's "show in simple mode" toggles, each one undo step.
 * A node's exposed parameters are kept in the order they were exposed (the simple form's order) and
 * saved with the graph (server/protocol/graph.ts: `exposed`).
 */
import type { NodeEditor } from 'rete';
import type { AreaPlugin } from 'rete-area-plugin';
import type { HistoryPlugin } from 'rete-history-plugin';
import { FnAction, recordAction } from './param-history.ts';
import type { ChangeKind, Schemes } from './schemes.ts';

/** The list after showing (`on`) or hiding `param`: appended at the end, or taken out. */
export function toggledExposure(exposed: readonly string[] | undefined, param: string, on: boolean): string[] {
  const rest = (exposed ?? []).filter((p) => p !== param);
  return on ? [...rest, param] : rest;
}

export function createExposureEdits(c: {
  editor: NodeEditor<Schemes>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the area carries create-editor.tsx's extra signals; only update() is used here
  area: AreaPlugin<Schemes, any>;
  history: HistoryPlugin<Schemes>;
  changed(kind: ChangeKind): void;
}) {
  function apply(nodeId: string, exposed: string[] | undefined): void {
    const node = c.editor.getNode(nodeId);
    if (!node) return;
    node.exposed = exposed?.length ? exposed : undefined;
    void c.area.update('node', nodeId);
    c.changed('params');
  }

  /** Shows `param` of the node in simple mode, or hides it there. */
  function setExposed(nodeId: string, param: string, on: boolean): void {
    const node = c.editor.getNode(nodeId);
    if (!node || (node.exposed ?? []).includes(param) === on) return;
    const before = node.exposed;
    const after = toggledExposure(before, param, on);
    recordAction(
      c.history,
      new FnAction(
        () => apply(nodeId, before),
        () => apply(nodeId, after),
      ),
    );
    apply(nodeId, after);
  }

  return { setExposed };
}

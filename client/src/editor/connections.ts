/**
 * Typed connections: an output feeds an input of its own socket type only, one connection per
 * input, no loops. Checked where the user drags (so a refused drop never costs the connection the
 * input had) and in the editor's pipe (whatever path a connection takes: flow, undo, paste, load).
 */
import type { NodeEditor } from 'rete';
import { ClassicFlow, type ConnectionPlugin, type SocketData } from 'rete-connection-plugin';
import type { HistoryPlugin } from 'rete-history-plugin';
import { wouldCreateCycle } from '../graph-io.ts';
import type { Schemes, TypedSocket } from './schemes.ts';

export function socketOf(editor: NodeEditor<Schemes>, nodeId: string, side: 'input' | 'output', key: string): TypedSocket | undefined {
  const node = editor.getNode(nodeId);
  if (!node) return undefined;
  return side === 'input' ? node.inputs[key]?.socket : node.outputs[key]?.socket;
}

/** Why a connection may not be drawn, or null when it may. */
export function refusal(editor: NodeEditor<Schemes>, source: string, sourceOutput: string, target: string, targetInput: string): string | null {
  const out = socketOf(editor, source, 'output', sourceOutput);
  const inp = socketOf(editor, target, 'input', targetInput);
  if (!out || !inp) return 'That socket does not exist.';
  if (source === target) return 'A node cannot feed itself.';
  if (!out.isCompatibleWith(inp)) return `Cannot connect ${out.type} to ${inp.type}: an input takes only its own type.`;
  const edges = editor.getConnections().filter((c) => !(c.target === target && c.targetInput === targetInput));
  if (wouldCreateCycle(edges, source, target)) return 'That connection would make a loop.';
  return null;
}

export function typeConnections<E>(args: {
  editor: NodeEditor<Schemes>;
  connection: ConnectionPlugin<Schemes, E>;
  history: HistoryPlugin<Schemes>;
  /** True while a graph loads: refusals then are the file's, reported by the import plan. */
  loading(): boolean;
  onRejected(message: string): void;
}): void {
  const { editor, connection, history } = args;
  connection.addPreset(
    () =>
      new ClassicFlow<Schemes, E[]>({
        // Checked before the flow removes an input's existing connection: a refused drop must not
        // cost the user the connection they had.
        canMakeConnection(from: SocketData, to: SocketData) {
          if (from.side === to.side) return false;
          const [out, inp] = from.side === 'output' ? [from, to] : [to, from];
          const why = refusal(editor, out.nodeId, out.key, inp.nodeId, inp.key);
          if (why) {
            args.onRejected(why);
            // The flow would keep the dragged wire hanging on the pointer; a refusal ends the drag.
            setTimeout(() => connection.drop(), 0);
            return false;
          }
          // Replacing an input's connection = remove + add: keep them one undo step.
          history.separate();
          return true;
        },
      }),
  );

  // Connections whose removal is in flight. NodeEditor.removeConnection looks the index up before it
  // awaits its pipes and splices after: two removals of one id in flight splice a neighbour too.
  const removing = new Set<string>();
  // The real guard, registered before the plugins so it sees each signal first and synchronously.
  editor.addPipe(async (ctx) => {
    if (ctx.type === 'connectionremove') {
      if (removing.has(ctx.data.id)) return undefined;
      removing.add(ctx.data.id);
    }
    if (ctx.type === 'connectionremoved') removing.delete(ctx.data.id);
    if (ctx.type === 'connectioncreate') {
      const c = ctx.data;
      const why = refusal(editor, c.source, c.sourceOutput as string, c.target, c.targetInput as string);
      if (why) {
        if (!args.loading()) args.onRejected(why);
        return undefined;
      }
      // One connection per input: a new one replaces the old.
      for (const old of editor.getConnections().filter((x) => x.target === c.target && x.targetInput === c.targetInput && !removing.has(x.id))) {
        await editor.removeConnection(old.id);
      }
    }
    return ctx;
  });
}

/**
 * Pieces of a graph as objects: nodes with their positions and every connection that touches them
 * (with its reroute points). What a removal takes and its undo puts back, and what a socket count
 * change cuts; putting and taking are unrecorded (the action that calls them is the undo step).
 */
import type { NodeEditor } from 'rete';
import type { AreaPlugin } from 'rete-area-plugin';
import type { HistoryPlugin } from 'rete-history-plugin';
import type { Position } from '../graph-io.ts';
import { untracked } from './param-history.ts';
import type { createPins } from './pins.ts';
import type { Schemes, StudioNode } from './schemes.ts';

/** Nodes with every connection that touches them, as objects: what a removal takes and its undo puts back. */
export interface Piece {
  nodes: { node: StudioNode; position: Position }[];
  connections: { connection: Schemes['Connection']; points: Position[] }[];
}

export function createPieces(c: {
  editor: NodeEditor<Schemes>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the area carries create-editor.tsx's extra signals; only its base API is used here
  area: AreaPlugin<Schemes, any>;
  history: HistoryPlugin<Schemes>;
  pins: ReturnType<typeof createPins>;
}) {
  const { editor, area, history, pins } = c;

  function capture(ids: string[]): Piece {
    const set = new Set(ids);
    return {
      nodes: ids.flatMap((id) => {
        const node = editor.getNode(id);
        return node ? [{ node, position: { ...(area.nodeViews.get(id)?.position ?? { x: 0, y: 0 }) } }] : [];
      }),
      connections: editor
        .getConnections()
        .filter((x) => set.has(x.source) || set.has(x.target))
        .map((connection) => ({ connection, points: pins.pinsOf(connection.id) })),
    };
  }

  /** Puts a piece in, unrecorded (the action that calls this is the undo step). */
  async function put(piece: Piece): Promise<void> {
    await untracked(history, async () => {
      for (const { node, position } of piece.nodes) {
        node.selected = false;
        await editor.addNode(node);
        await area.translate(node.id, position);
      }
      for (const { connection, points } of piece.connections) {
        await editor.addConnection(connection);
        if (points.length) pins.setPins(connection.id, points);
      }
    });
  }

  /** Takes a piece out, unrecorded. */
  async function take(piece: Piece): Promise<void> {
    await untracked(history, async () => {
      for (const { connection } of piece.connections) if (editor.getConnection(connection.id)) await editor.removeConnection(connection.id);
      for (const { node } of piece.nodes) if (editor.getNode(node.id)) await editor.removeNode(node.id);
    });
  }

  return { capture, put, take };
}

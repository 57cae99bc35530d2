/**
 * A connection dropped on empty canvas (ComfyUI's "release a link to search"): the editor reports the
 * loose end so the studio can offer the node types that take it, then connects the one picked. A drop
 * on a node (a refused socket, the node's body) is not a drop on empty canvas and reports nothing.
 */
import type { NodeEditor } from 'rete';
import type { Connection, ConnectionPlugin } from 'rete-connection-plugin';
import type { WireEnd } from '../catalog-search.ts';
import type { Position } from '../graph-io.ts';
import { refusal, socketOf } from './connections.ts';
import type { Schemes } from './schemes.ts';

/** Calls `onDropped` with the wire's loose end and the screen point where it was let go on empty canvas. */
export function watchWireDrops<E>(args: {
  editor: NodeEditor<Schemes>;
  connection: ConnectionPlugin<Schemes, E>;
  container: HTMLElement;
  onDropped(wire: WireEnd, client: Position): void;
}): () => void {
  const { editor, connection, container } = args;
  // Where the last press ended: the plugin's drop signal carries no pointer.
  let released: { client: Position; onCanvas: boolean } | null = null;
  const onPointerUp = (e: PointerEvent) => {
    const target = e.target as Element | null;
    const onCanvas = Boolean(
      target && container.contains(target) && !target.closest('.sd-node, .sd-frame-header, [data-testid="minimap"], [data-testid="pin"]'),
    );
    released = { client: { x: e.clientX, y: e.clientY }, onCanvas };
  };
  // Capture on the window: the area's own handler (which ends the drag) runs after it.
  window.addEventListener('pointerup', onPointerUp, true);
  connection.addPipe((ctx) => {
    // The plugin's signals share the pipe with the area's (E): only its drop matters here.
    const drop = (ctx as { type?: string }).type === 'connectiondrop' ? (ctx as Extract<Connection, { type: 'connectiondrop' }>).data : null;
    if (drop && !drop.socket && !drop.created && released?.onCanvas) {
      const s = drop.initial;
      const sock = socketOf(editor, s.nodeId, s.side, s.key);
      if (sock) args.onDropped({ nodeId: s.nodeId, side: s.side, key: s.key, type: sock.type }, released.client);
      released = null;
    }
    return ctx;
  });
  return () => window.removeEventListener('pointerup', onPointerUp, true);
}

/**
 * Connects a node just added to a wire's loose end: its first free socket on the other side that the
 * wire may feed (or be fed by), else the first that may. Returns why not, or null once connected.
 */
export async function connectToWire(editor: NodeEditor<Schemes>, nodeId: string, wire: WireEnd): Promise<string | null> {
  const node = editor.getNode(nodeId);
  if (!node || !editor.getNode(wire.nodeId)) return 'The node the connection came from is gone.';
  const theirs = wire.side === 'output' ? node.inputs : node.outputs;
  const ends = (key: string) =>
    wire.side === 'output'
      ? { source: wire.nodeId, sourceOutput: wire.key, target: nodeId, targetInput: key }
      : { source: nodeId, sourceOutput: key, target: wire.nodeId, targetInput: wire.key };
  const fits = Object.keys(theirs).filter((key) => {
    const e = ends(key);
    return refusal(editor, e.source, e.sourceOutput, e.target, e.targetInput) === null;
  });
  const free = fits.find((key) => !editor.getConnections().some((c) => c.target === nodeId && c.targetInput === key));
  const key = free ?? fits[0];
  if (key === undefined) return `${node.label} has no ${wire.side === 'output' ? 'input' : 'output'} of type ${wire.type}.`;
  const e = ends(key);
  await editor.addConnection({ id: `${e.source}.${e.sourceOutput}->${e.target}.${e.targetInput}`, ...e } as Schemes['Connection']);
  return null;
}

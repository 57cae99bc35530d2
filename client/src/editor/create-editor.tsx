/**
 * Builds the Rete editor: area, React rendering, typed connections, history (with parameter edits),
 * minimap, selection, reroute points and frames. Exposes a small imperative handle to the app; the
 * app draws the context menu (the editor says what was right-clicked, and where).
 */
import { createRoot } from 'react-dom/client';
import { NodeEditor } from 'rete';
import { AreaExtensions, AreaPlugin } from 'rete-area-plugin';
import { ConnectionPlugin } from 'rete-connection-plugin';
import { ReroutePlugin, type RerouteExtra } from 'rete-connection-reroute-plugin';
import { HistoryPlugin, Presets as HistoryPresets } from 'rete-history-plugin';
import { MinimapPlugin, type MinimapExtra } from 'rete-minimap-plugin';
import { Presets, ReactPlugin, type ReactArea2D } from 'rete-react-plugin';
import type { Catalog, CatalogNode } from '../../../server/protocol/catalog.ts';
import type { Graph, NodeMode } from '../../../server/protocol/graph.ts';
import type { UploadResult } from '../api.ts';
import type { WireEnd } from '../catalog-search.ts';
import type { ClipboardData } from '../clipboard.ts';
import { snapshotToGraph, type EditorSnapshot, type Position } from '../graph-io.ts';
import { NodeEnvContext, type EditorBridge, type NodeEnv } from './bridge.ts';
import { typeConnections, socketOf } from './connections.ts';
import { connectToWire, watchWireDrops } from './wire-drop.ts';
import { FramesLayer } from './frames.ts';
import { NodeView, SocketView } from './NodeView.tsx';
import { createOperations } from './operations.ts';
import type { ChangeKind, Schemes } from './schemes.ts';

type AreaExtra = ReactArea2D<Schemes> | MinimapExtra | RerouteExtra;

/** What a right-click was on. */
export type MenuTarget =
  { kind: 'canvas' } | { kind: 'node'; id: string } | { kind: 'connection'; id: string } | { kind: 'pin'; id: string } | { kind: 'frame'; id: string };

export interface EditorHooks {
  /** A connection the user tried to draw was refused; `message` says why. */
  onRejectedConnection(message: string): void;
  /** An edit could not be made (a count of sockets whose connections could not be moved); `message` says why. */
  onEditFailed(message: string): void;
  /** Double-click on empty canvas: open the node palette there. */
  onCanvasDoubleClick(at: Position): void;
  /** A connection let go on empty canvas: offer the node types that take it (`client`: where, on the screen). */
  onWireDropped(wire: WireEnd, client: Position, at: Position): void;
  /** Right-click: `client` is where on the screen, `at` where in the graph. */
  onContextMenu(target: MenuTarget, client: Position, at: Position): void;
  uploadImage(file: File): Promise<UploadResult>;
}

export interface StudioEditor {
  /** Adds a node (centred on `at`, default the view's centre), selects it and returns its id. */
  addNode(type: string, at?: Position, params?: Record<string, unknown>): Promise<string>;
  /** Adds a node at `at` and connects it to a dropped connection's loose end. */
  addNodeForWire(type: string, at: Position, wire: WireEnd): Promise<void>;
  snapshot(): EditorSnapshot;
  toGraph(meta?: Graph['meta']): Graph;
  /** Replaces the editor content with a graph; returns what could not be kept. History starts fresh. */
  load(graph: Graph): Promise<string[]>;
  undo(): Promise<void>;
  redo(): Promise<void>;
  selectedIds(): string[];
  select(ids: string[]): Promise<void>;
  deleteSelected(): Promise<void>;
  removeNodes(ids: string[]): Promise<void>;
  copy(ids?: string[]): ClipboardData | null;
  paste(data: ClipboardData, opts?: { at?: Position; keepInputs?: boolean }): Promise<void>;
  duplicate(ids?: string[]): Promise<void>;
  /** Bypass or mute the nodes (default: the selection), or give them back their run when all already have it. */
  toggleMode(mode: NodeMode, ids?: string[]): void;
  setTitle(nodeId: string, title: string | undefined): void;
  /** Sets a parameter as one undo step (what the seed control does after a run). */
  setParam(nodeId: string, param: string, value: unknown): void;
  /** Lays the graph out left to right (dagre), one undo step. */
  arrange(): Promise<void>;
  /** A frame around the nodes (default: the selection), or an empty one at a point. */
  addFrame(opts?: { ids?: string[]; at?: Position }): void;
  editFrameTitle(id: string): void;
  removeFrame(id: string): void;
  addPin(connectionId: string, at: Position): void;
  removePin(pinId: string): void;
  removeConnection(id: string): Promise<void>;
  /** Shows the whole graph, clear of the minimap; `readable`: never smaller than a readable scale. */
  zoomToFit(opts?: { readable?: boolean }): Promise<void>;
  focusNode(id: string): Promise<void>;
  /** Where a screen point is in the graph. */
  graphPoint(client: Position): Position;
  setMinimap(visible: boolean): void;
  /**
   * Calls `listener` after each change of the graph ('layout': the studio moved nodes by itself, a grown
   * node pushing its neighbours); returns how to stop. Nothing is reported while a graph is loaded.
   */
  onChange(listener: (kind: ChangeKind) => void): () => void;
  /** What this graph's node views reach, for views drawn outside the canvas (the simple form). */
  readonly nodeEnv: NodeEnv;
  destroy(): void;
}

/** What the editor of one graph shares with its node views: the graph's run states, and the studio's state. */
export type EditorEnv = Omit<NodeEnv, 'bridge'>;

type Editor = NodeEditor<Schemes>;
type Area = AreaPlugin<Schemes, AreaExtra>;
type Operations = ReturnType<typeof createOperations>;

export async function createStudioEditor(container: HTMLElement, catalog: Catalog, hooks: EditorHooks, env: EditorEnv): Promise<StudioEditor> {
  const editor = new NodeEditor<Schemes>();
  const area = new AreaPlugin<Schemes, AreaExtra>(container);
  const connection = new ConnectionPlugin<Schemes, AreaExtra>();
  const history = new HistoryPlugin<Schemes>();
  const reroute = new ReroutePlugin<Schemes>();
  /** loading: a graph is being put in; relayout: the studio moves nodes by itself. */
  const state = { loading: false, relayout: false };
  const listeners = new Set<(kind: ChangeKind) => void>();
  const changed = (kind: ChangeKind) => {
    if (!state.loading) for (const fn of listeners) fn(kind);
  };
  const selector = AreaExtensions.selector();
  const selectable = AreaExtensions.selectableNodes(area, selector, { accumulating: AreaExtensions.accumulateOnCtrl() });
  /** The last pointer position on the screen (a pin's context menu reports no event). */
  const pointer = { lastClient: { x: 0, y: 0 } as Position };

  typeConnections({ editor, connection, history, loading: () => state.loading, onRejected: hooks.onRejectedConnection });
  // The bridge is filled in once the operations exist; node views are drawn only after that.
  const bridge = {} as EditorBridge;
  const nodeEnv: NodeEnv = { bridge, ...env };
  const render = createRenderer({ editor, area, reroute, hooks, pointer, env: nodeEnv });

  editor.use(area);
  area.use(connection);
  area.use(render);
  // The plugin's declared parent signals use Rete's base connection type; ours extends it.
  render.use(reroute as never);
  area.use(history);
  area.use(new MinimapPlugin<Schemes>({ boundViewport: true }));
  history.addPreset(HistoryPresets.classic.setup());
  AreaExtensions.simpleNodesOrder(area);

  const frames = new FramesLayer(area.area.content, {
    zoom: () => area.area.transform.k,
    nodesInside: (r) =>
      ops
        .rects()
        .filter((n) => n.x >= r.x && n.y >= r.y && n.x + n.width <= r.x + r.width && n.y + n.height <= r.y + r.height)
        .map((n) => n.id),
    moveNodes: (ids, dx, dy) => ops.shift(ids, dx, dy),
    committed: (before, carried) => ops.framesCommitted(before, carried),
    contextMenu: (id, e) => {
      area.area.setPointerFrom(e);
      hooks.onContextMenu({ kind: 'frame', id }, { x: e.clientX, y: e.clientY }, { ...area.area.pointer });
    },
    picked: () => void ops.api.select([]),
  });

  const specs = new Map<string, CatalogNode>(catalog.nodes.map((n) => [n.type, n]));
  const colors = new Map(catalog.socketTypes.map((s) => [s.type as string, s.color]));
  const ops = createOperations({
    ...{ editor, area, history, reroute, selectable, frames, catalog, specs, colors, container, state, changed },
    onEditFailed: hooks.onEditFailed,
    runtime: env.runtime,
    uploads: env.shared.uploads,
  });
  fillBridge(bridge, editor, ops, hooks, env.runtime);

  watchSignals({ editor, area, reroute, connection, history, selectable, container, ops, hooks, state, changed });
  const stopListening = listenOnCanvas({ editor, connection, container, area, ops, frames, hooks, pointer });

  return {
    ...ops.api,
    snapshot: ops.snapshot,
    setParam: (nodeId, param, value) => ops.setParam(nodeId, param, value, false),
    toGraph: (meta = {}) => snapshotToGraph(ops.snapshot(), meta),
    ...frameAndWireEdits(editor, ops, frames, hooks),
    undo: () => history.undo(),
    redo: () => history.redo(),
    graphPoint: (client) => graphPointOf(container, area, client),
    setMinimap(visible) {
      container.dataset.minimap = visible ? 'on' : 'off';
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    nodeEnv,
    destroy() {
      listeners.clear();
      stopListening();
      ops.stop();
      frames.destroy();
      area.destroy();
    },
  };
}

/** Delete (the selected nodes, or else the picked frame, whose nodes stay) and a node added for a dropped connection. */
function frameAndWireEdits(editor: Editor, ops: Operations, frames: FramesLayer, hooks: EditorHooks) {
  return {
    async deleteSelected() {
      const frame = frames.selected();
      if (ops.api.selectedIds().length === 0 && frame) frames.remove(frame);
      else await ops.api.deleteSelected();
    },
    async addNodeForWire(type: string, at: Position, wire: WireEnd) {
      const id = await ops.api.addNode(type, at);
      const why = await connectToWire(editor, id, wire);
      if (why) hooks.onEditFailed(why);
    },
  };
}

/** Where a screen point is in the graph. */
function graphPointOf(container: HTMLElement, area: Area, client: Position): Position {
  const rect = container.getBoundingClientRect();
  const { x, y, k } = area.area.transform;
  return { x: (client.x - rect.left - x) / k, y: (client.y - rect.top - y) / k };
}

/** The node views' way back into the editor (bridge.ts), once its operations exist. */
function fillBridge(bridge: EditorBridge, editor: Editor, ops: Operations, hooks: EditorHooks, runtime: NodeEnv['runtime']): void {
  Object.assign(bridge, {
    setParam: ops.setParam,
    setTitle: ops.setTitle,
    setExposed: ops.setExposed,
    exposedOf: (nodeId) => editor.getNode(nodeId)?.exposed ?? [],
    nodeResized: ops.nodeResized,
    async uploadImage(nodeId, param, file) {
      const res = await hooks.uploadImage(file);
      ops.rememberUpload(res, file.name);
      ops.setParam(nodeId, param, res.name, false);
      // The same picture again (same content, same name) changes no value: a failed run's error about it goes all the same.
      if (runtime.get(nodeId).error) runtime.update(nodeId, { status: 'idle', error: undefined });
    },
  } satisfies EditorBridge);
}

/**
 * React rendering of nodes, sockets, connections, the minimap and reroute points. Every node is drawn in
 * a React root of its own, which the app's context never reaches: each node view is wrapped in a
 * provider of this graph's node environment, so it reaches this editor and this graph's run states.
 */
function createRenderer(c: {
  editor: Editor;
  area: Area;
  reroute: ReroutePlugin<Schemes>;
  hooks: EditorHooks;
  pointer: { lastClient: Position };
  env: NodeEnv;
}) {
  const { editor, area, reroute, hooks, pointer, env } = c;
  const render = new ReactPlugin<Schemes, AreaExtra>({ createRoot });
  const BoundNodeView = (props: Parameters<typeof NodeView>[0]) => (
    <NodeEnvContext.Provider value={env}>
      <NodeView {...props} />
    </NodeEnvContext.Provider>
  );
  render.addPreset(
    Presets.classic.setup({
      customize: {
        node: () => BoundNodeView,
        socket: () => SocketView,
        connection: (data) => {
          const src = socketOf(editor, data.payload.source, 'output', data.payload.sourceOutput as string);
          const color = src?.color ?? '#9aa4b2';
          const pseudo = Boolean((data.payload as { isPseudo?: boolean }).isPseudo);
          return function ConnectionView() {
            const { path } = Presets.classic.useConnection();
            if (!path) return null;
            return (
              <svg
                className={`sd-connection${pseudo ? ' pseudo' : ''}`}
                data-testid={pseudo ? 'pseudo-connection' : 'connection'}
                data-connection-id={data.payload.id}
              >
                <path d={path} style={{ stroke: color }} />
              </svg>
            );
          };
        },
      },
    }),
  );
  render.addPreset(Presets.minimap.setup({ size: 180 }));
  render.addPreset(
    Presets.reroute.setup({
      translate: (id, dx, dy) => void reroute.translate(id, dx, dy),
      contextMenu: (id) => hooks.onContextMenu({ kind: 'pin', id }, pointer.lastClient, { ...area.area.pointer }),
    }),
  );
  // Points are added by double-clicking a connection, not by any press on it (the plugin's default).
  // (The render scope passes the area's signals on to the reroute plugin; its types list only its own.)
  render.addPipe((ctx) => ((ctx as { type: string }).type === 'pointerdown' ? undefined : ctx));
  return render;
}

/** The editor's signals: changes reported, removed nodes forgotten, the context menu, a dragged connection's type. */
function watchSignals(c: {
  editor: Editor;
  area: Area;
  reroute: ReroutePlugin<Schemes>;
  connection: ConnectionPlugin<Schemes, AreaExtra>;
  history: HistoryPlugin<Schemes>;
  selectable: ReturnType<typeof AreaExtensions.selectableNodes>;
  container: HTMLElement;
  ops: Operations;
  hooks: EditorHooks;
  state: { relayout: boolean };
  changed(kind: ChangeKind): void;
}): void {
  const { editor, area, reroute, connection, history, selectable, container, ops, hooks, state, changed } = c;
  editor.addPipe((ctx) => {
    if (ctx.type === 'nodecreated' || ctx.type === 'connectioncreated') changed('structure');
    if (ctx.type === 'connectionremoved') {
      // Its reroute points go with it.
      for (const pin of reroute.pins.getPins(ctx.data.id)) reroute.pins.remove(pin.id);
      changed('structure');
    }
    if (ctx.type === 'noderemoved') ops.forget(ctx.data.id);
    return ctx;
  });
  area.addPipe((ctx) => {
    // Double-click belongs to the palette, not to zooming.
    if (ctx.type === 'zoom' && ctx.data.source === 'dblclick') return undefined;
    if (ctx.type === 'nodetranslated') changed(state.relayout ? 'layout' : 'position');
    if (ctx.type === 'translated' || (ctx.type === 'zoomed' && ctx.data.source)) ops.unfit();
    if (ctx.type === 'contextmenu') {
      const { event, context } = ctx.data;
      event.preventDefault();
      event.stopPropagation();
      area.area.setPointerFrom(event);
      const target: MenuTarget =
        context === 'root'
          ? { kind: 'canvas' }
          : 'source' in context && 'target' in context
            ? { kind: 'connection', id: context.id }
            : { kind: 'node', id: context.id };
      if (target.kind === 'node' && !editor.getNode(target.id)?.selected) void selectable.select(target.id, false);
      hooks.onContextMenu(target, { x: event.clientX, y: event.clientY }, { ...area.area.pointer });
      return undefined;
    }
    return ctx;
  });
  reroute.addPipe((ctx) => {
    if (ctx.type === 'pintranslated') changed('position');
    return ctx;
  });
  // While a connection is dragged, the canvas knows its type so the stylesheet can dim the rest.
  connection.addPipe((ctx) => {
    if (ctx.type === 'connectionpick') {
      const s = ctx.data.socket;
      const sock = socketOf(editor, s.nodeId, s.side, s.key);
      if (sock) container.dataset.picking = sock.type;
    }
    if (ctx.type === 'connectiondrop') {
      delete container.dataset.picking;
      history.separate();
    }
    return ctx;
  });
}

/** The canvas element's own listeners (double-click, focus, the pointer, a dropped connection); returns how to remove them. */
function listenOnCanvas(c: {
  editor: Editor;
  connection: ConnectionPlugin<Schemes, AreaExtra>;
  container: HTMLElement;
  area: Area;
  ops: Operations;
  frames: FramesLayer;
  hooks: EditorHooks;
  pointer: { lastClient: Position };
}): () => void {
  const { editor, connection, container, area, ops, frames, hooks, pointer } = c;
  const stopWireDrops = watchWireDrops({
    editor,
    connection,
    container,
    onDropped: (wire, client) => hooks.onWireDropped(wire, client, graphPointOf(container, area, client)),
  });
  const onDblClick = (e: MouseEvent) => {
    const target = e.target as Element | null;
    if (target?.closest('.sd-node, .sd-frame-header, [data-testid="minimap"], [data-testid="pin"]')) return;
    area.area.setPointerFrom(e);
    const at = { ...area.area.pointer };
    const wire = target?.closest('.sd-connection');
    const id = wire ? [...area.connectionViews.entries()].find(([, view]) => view.element.contains(wire))?.[0] : undefined;
    if (id) ops.addPin(id, at);
    else hooks.onCanvasDoubleClick(at);
  };
  // A press on the canvas ends editing in a node's field (the area's own handlers keep focus put),
  // so Delete and Ctrl+Z then act on the graph, not on the text.
  const onPointerDown = (e: PointerEvent) => {
    const target = e.target as Element | null;
    if (!target?.closest('.sd-frame-header')) frames.select(null);
    if (target?.closest('input, textarea, select, button, label, [contenteditable="true"]')) return;
    const active = document.activeElement;
    if (active instanceof HTMLElement && container.contains(active)) active.blur();
  };
  const onPointerMove = (e: PointerEvent | MouseEvent) => {
    pointer.lastClient = { x: e.clientX, y: e.clientY };
  };
  container.addEventListener('dblclick', onDblClick);
  container.addEventListener('pointerdown', onPointerDown, true);
  container.addEventListener('pointermove', onPointerMove);
  container.addEventListener('contextmenu', onPointerMove, true);
  return () => {
    stopWireDrops();
    container.removeEventListener('dblclick', onDblClick);
    container.removeEventListener('pointerdown', onPointerDown, true);
    container.removeEventListener('pointermove', onPointerMove);
    container.removeEventListener('contextmenu', onPointerMove, true);
  };
}

/**
 * Builds the Rete editor: area, React rendering, typed connections, history (with parameter edits),
 * context menu, minimap, selection. Exposes a small imperative handle to the app.
 */
import { createRoot } from 'react-dom/client';
import { NodeEditor } from 'rete';
import { AreaExtensions, AreaPlugin } from 'rete-area-plugin';
import { ClassicFlow, ConnectionPlugin, type SocketData } from 'rete-connection-plugin';
import { ContextMenuPlugin, type ContextMenuExtra } from 'rete-context-menu-plugin';
import { HistoryPlugin, Presets as HistoryPresets } from 'rete-history-plugin';
import { MinimapPlugin, type MinimapExtra } from 'rete-minimap-plugin';
import { Presets, ReactPlugin, type ReactArea2D } from 'rete-react-plugin';
import type { Catalog, CatalogNode } from '../../../server/protocol/catalog.ts';
import type { Graph } from '../../../server/protocol/graph.ts';
import type { UploadResult } from '../api.ts';
import {
  defaultParams,
  groupByCategory,
  planImport,
  resolveOverlaps,
  snapshotToGraph,
  uniqueNodeId,
  wouldCreateCycle,
  type EditorSnapshot,
  type Position,
} from '../graph-io.ts';
import { nodeRuntime } from '../runtime.ts';
import { setBridge, uploadedImages } from './bridge.ts';
import { NodeView, SocketView } from './NodeView.tsx';
import { recordParamChange } from './param-history.ts';
import { StudioNode, type Schemes, type TypedSocket } from './schemes.ts';

const nextFrame = () => new Promise<void>((resolve) => requestAnimationFrame(() => resolve()));

type AreaExtra = ReactArea2D<Schemes> | ContextMenuExtra | MinimapExtra;

export type ChangeKind = 'structure' | 'params' | 'position';

export interface EditorHooks {
  onChange(kind: ChangeKind): void;
  /** A connection the user tried to draw was refused; `message` says why. */
  onRejectedConnection(message: string): void;
  /** Double-click on empty canvas: open the node palette there. */
  onCanvasDoubleClick(at: Position): void;
  uploadImage(file: File): Promise<UploadResult>;
}

export interface StudioEditor {
  addNode(type: string, at?: Position): Promise<StudioNode>;
  snapshot(): EditorSnapshot;
  toGraph(meta?: Graph['meta']): Graph;
  /** Replaces the editor content with a graph; returns what could not be kept. History starts fresh. */
  load(graph: Graph): Promise<string[]>;
  undo(): Promise<void>;
  redo(): Promise<void>;
  deleteSelected(): Promise<void>;
  zoomToFit(): Promise<void>;
  focusNode(id: string): Promise<void>;
  destroy(): void;
}

export async function createStudioEditor(container: HTMLElement, catalog: Catalog, hooks: EditorHooks): Promise<StudioEditor> {
  const specs = new Map(catalog.nodes.map((n) => [n.type, n]));
  const colors = new Map(catalog.socketTypes.map((s) => [s.type as string, s.color]));
  const colorOf = (type: string) => colors.get(type) ?? '#777';

  const editor = new NodeEditor<Schemes>();
  const area = new AreaPlugin<Schemes, AreaExtra>(container);
  const connection = new ConnectionPlugin<Schemes, AreaExtra>();
  const render = new ReactPlugin<Schemes, AreaExtra>({ createRoot });
  const history = new HistoryPlugin<Schemes>();
  const minimap = new MinimapPlugin<Schemes>({ boundViewport: true });
  let loading = false;
  const changed = (kind: ChangeKind) => {
    if (!loading) hooks.onChange(kind);
  };

  const selector = AreaExtensions.selector();
  const selectable = AreaExtensions.selectableNodes(area, selector, { accumulating: AreaExtensions.accumulateOnCtrl() });

  // --- typed connections -------------------------------------------------------------------------
  const socketOf = (nodeId: string, side: 'input' | 'output', key: string): TypedSocket | undefined => {
    const node = editor.getNode(nodeId);
    if (!node) return undefined;
    return side === 'input' ? node.inputs[key]?.socket : node.outputs[key]?.socket;
  };

  /** Why a connection may not be drawn, or null when it may. */
  const refusal = (source: string, sourceOutput: string, target: string, targetInput: string): string | null => {
    const out = socketOf(source, 'output', sourceOutput);
    const inp = socketOf(target, 'input', targetInput);
    if (!out || !inp) return 'That socket does not exist.';
    if (source === target) return 'A node cannot feed itself.';
    if (!out.isCompatibleWith(inp)) return `Cannot connect ${out.type} to ${inp.type}: an input takes only its own type.`;
    const edges = editor.getConnections().filter((c) => !(c.target === target && c.targetInput === targetInput));
    if (wouldCreateCycle(edges, source, target)) return 'That connection would make a loop.';
    return null;
  };

  connection.addPreset(() =>
    new ClassicFlow<Schemes, AreaExtra[]>({
      // Checked before the flow removes an input's existing connection: a refused drop must not
      // cost the user the connection they had.
      canMakeConnection(from: SocketData, to: SocketData) {
        if (from.side === to.side) return false;
        const [out, inp] = from.side === 'output' ? [from, to] : [to, from];
        const why = refusal(out.nodeId, out.key, inp.nodeId, inp.key);
        if (why) {
          hooks.onRejectedConnection(why);
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

  // The real guard: whatever path a connection takes (flow, undo, import), it must type-check.
  // Registered before the plugins, so it sees each signal first and synchronously.
  editor.addPipe(async (ctx) => {
    if (ctx.type === 'connectionremove') {
      if (removing.has(ctx.data.id)) return undefined;
      removing.add(ctx.data.id);
    }
    if (ctx.type === 'connectionremoved') removing.delete(ctx.data.id);
    if (ctx.type === 'connectioncreate') {
      const c = ctx.data;
      const why = refusal(c.source, c.sourceOutput as string, c.target, c.targetInput as string);
      if (why) {
        if (!loading) hooks.onRejectedConnection(why);
        return undefined;
      }
      // One connection per input: a new one replaces the old.
      for (const old of editor.getConnections().filter((x) => x.target === c.target && x.targetInput === c.targetInput && !removing.has(x.id))) {
        await editor.removeConnection(old.id);
      }
    }
    if (ctx.type === 'nodecreated' || ctx.type === 'connectioncreated' || ctx.type === 'connectionremoved') changed('structure');
    if (ctx.type === 'noderemoved') {
      nodeRuntime.remove(ctx.data.id);
      // The selector keeps removed nodes (and the last picked one) otherwise: when undo brings
      // them back and places one, the area moves every node still 'selected' by the same offset.
      void selectable.unselect(ctx.data.id);
      changed('structure');
    }
    return ctx;
  });

  // --- rendering ---------------------------------------------------------------------------------
  render.addPreset(
    Presets.classic.setup({
      customize: {
        node: () => NodeView,
        socket: () => SocketView,
        connection: (data) => {
          const src = socketOf(data.payload.source, 'output', data.payload.sourceOutput as string);
          const color = src?.color ?? '#9aa4b2';
          const pseudo = Boolean((data.payload as { isPseudo?: boolean }).isPseudo);
          return function ConnectionView() {
            const { path } = Presets.classic.useConnection();
            if (!path) return null;
            return (
              <svg className={`sd-connection${pseudo ? ' pseudo' : ''}`} data-testid={pseudo ? 'pseudo-connection' : 'connection'}>
                <path d={path} style={{ stroke: color }} />
              </svg>
            );
          };
        },
      },
    }),
  );
  render.addPreset(Presets.contextMenu.setup({ delay: 200 }));
  render.addPreset(Presets.minimap.setup({ size: 180 }));

  const contextMenu = new ContextMenuPlugin<Schemes>({
    items(context) {
      if (context === 'root') {
        const at = { ...area.area.pointer };
        return {
          searchBar: true,
          list: groupByCategory(catalog.nodes).map(([category, nodes]) => ({
            label: category,
            key: `cat:${category}`,
            handler: () => undefined,
            subitems: nodes.map((n) => ({ label: n.title, key: n.type, handler: () => void addNode(n.type, at) })),
          })),
        };
      }
      if ('source' in context && 'target' in context) {
        return {
          searchBar: false,
          list: [{ label: 'Delete connection', key: 'delete', handler: () => void editor.removeConnection(context.id) }],
        };
      }
      const node = context as StudioNode;
      return {
        searchBar: false,
        list: [
          { label: 'Duplicate', key: 'duplicate', handler: () => void duplicate(node) },
          { label: 'Delete', key: 'delete', handler: () => void removeNodes([node.id]) },
        ],
      };
    },
  });

  editor.use(area);
  area.use(connection);
  area.use(render);
  area.use(contextMenu);
  area.use(history);
  area.use(minimap);
  history.addPreset(HistoryPresets.classic.setup());
  AreaExtensions.simpleNodesOrder(area);

  // Double-click belongs to the palette, not to zooming.
  area.addPipe((ctx) => {
    if (ctx.type === 'zoom' && ctx.data.source === 'dblclick') return undefined;
    if (ctx.type === 'nodetranslated') changed('position');
    return ctx;
  });
  // While a connection is dragged, the canvas knows its type so the stylesheet can dim the rest.
  connection.addPipe((ctx) => {
    if (ctx.type === 'connectionpick') {
      const s = ctx.data.socket;
      const sock = socketOf(s.nodeId, s.side, s.key);
      if (sock) container.dataset.picking = sock.type;
    }
    if (ctx.type === 'connectiondrop') {
      delete container.dataset.picking;
      history.separate();
    }
    return ctx;
  });
  const onDblClick = (e: MouseEvent) => {
    const target = e.target as Element | null;
    if (target?.closest('.sd-node, [data-testid="context-menu"], [data-testid="minimap"]')) return;
    area.area.setPointerFrom(e);
    hooks.onCanvasDoubleClick({ ...area.area.pointer });
  };
  container.addEventListener('dblclick', onDblClick);
  // A press on the canvas ends editing in a node's field (the area's own handlers keep focus put),
  // so Delete and Ctrl+Z then act on the graph, not on the text.
  const onPointerDown = (e: PointerEvent) => {
    const target = e.target as Element | null;
    if (target?.closest('input, textarea, select, button, label')) return;
    const active = document.activeElement;
    if (active instanceof HTMLElement && container.contains(active)) active.blur();
  };
  container.addEventListener('pointerdown', onPointerDown, true);

  // --- operations --------------------------------------------------------------------------------
  function createNode(id: string, spec: CatalogNode, params: Record<string, unknown>, title?: string): StudioNode {
    const sockets = { inputs: spec.inputs.map((s) => ({ ...s })), outputs: spec.outputs.map((s) => ({ ...s })) };
    return new StudioNode(id, spec.type, spec, params, sockets, colorOf, title);
  }

  async function addNode(type: string, at?: Position): Promise<StudioNode> {
    const spec = specs.get(type);
    if (!spec) throw new Error(`Unknown node type "${type}"`);
    const node = createNode(uniqueNodeId(type, editor.getNodes().map((n) => n.id)), spec, defaultParams(spec));
    history.separate();
    await editor.addNode(node);
    const pos = at ?? centerOfView();
    await area.translate(node.id, { x: pos.x - node.width / 2, y: pos.y - 40 });
    history.separate();
    await selectable.select(node.id, false);
    return node;
  }

  async function duplicate(node: StudioNode): Promise<void> {
    if (!node.spec) return;
    const view = area.nodeViews.get(node.id);
    const copy = createNode(uniqueNodeId(node.type, editor.getNodes().map((n) => n.id)), node.spec, structuredClone(node.params), node.customTitle);
    history.separate();
    await editor.addNode(copy);
    await area.translate(copy.id, { x: (view?.position.x ?? 0) + 40, y: (view?.position.y ?? 0) + 40 });
    history.separate();
  }

  async function removeNodes(ids: string[]): Promise<void> {
    history.separate();
    for (const id of ids) {
      for (const c of editor.getConnections().filter((c) => c.source === id || c.target === id)) {
        await editor.removeConnection(c.id);
      }
      if (editor.getNode(id)) await editor.removeNode(id);
    }
    history.separate();
  }

  function centerOfView(): Position {
    const { x, y, k } = area.area.transform;
    return { x: (container.clientWidth / 2 - x) / k, y: (container.clientHeight / 2 - y) / k };
  }

  function applyParam(nodeId: string, param: string, value: unknown): void {
    const node = editor.getNode(nodeId);
    if (!node) return;
    if (value === undefined) delete node.params[param];
    else node.params[param] = value;
    void area.update('node', nodeId);
    changed('params');
  }

  function snapshot(): EditorSnapshot {
    return {
      nodes: editor.getNodes().map((n) => ({
        id: n.id,
        type: n.type,
        params: n.params,
        position: area.nodeViews.get(n.id)?.position ?? { x: 0, y: 0 },
        ...(n.customTitle ? { title: n.customTitle } : {}),
      })),
      connections: editor.getConnections().map((c) => ({
        source: c.source,
        sourceOutput: c.sourceOutput as string,
        target: c.target,
        targetInput: c.targetInput as string,
      })),
    };
  }

  async function load(graph: Graph): Promise<string[]> {
    const plan = planImport(graph, catalog);
    loading = true;
    try {
      await editor.clear();
      nodeRuntime.clear();
      for (const p of plan.nodes) {
        const node = p.spec
          ? createNode(p.dto.id, p.spec, p.dto.params, p.dto.title)
          : new StudioNode(p.dto.id, p.dto.type, null, p.dto.params, p, colorOf, p.dto.title);
        await editor.addNode(node);
        await area.translate(node.id, p.dto.position);
      }
      for (const c of plan.connections) {
        const source = editor.getNode(c.source);
        const target = editor.getNode(c.target);
        if (!source || !target) continue;
        await editor.addConnection({ id: `${c.source}.${c.sourceOutput}->${c.target}.${c.targetInput}`, ...c } as Schemes['Connection']);
      }
      // Let React lay the nodes out, then untangle nodes that overlap (files laid out for other
      // node sizes) and fit them into view.
      await nextFrame();
      await nextFrame();
      const rects = editor.getNodes().map((n) => {
        const view = area.nodeViews.get(n.id);
        const el = view?.element.firstElementChild as HTMLElement | null | undefined;
        return { id: n.id, x: view?.position.x ?? 0, y: view?.position.y ?? 0, width: el?.offsetWidth ?? n.width, height: el?.offsetHeight ?? n.height };
      });
      for (const [id, pos] of resolveOverlaps(rects, 24)) await area.translate(id, pos);
      await zoomToFit();
    } finally {
      loading = false;
      history.clear();
    }
    return plan.problems;
  }

  async function zoomToFit(): Promise<void> {
    const nodes = editor.getNodes();
    if (nodes.length === 0) {
      area.area.transform.x = container.clientWidth / 2;
      area.area.transform.y = container.clientHeight / 3;
      await area.area.zoom(1, 0, 0);
      return;
    }
    await AreaExtensions.zoomAt(area, nodes, { scale: 0.9 });
  }

  setBridge({
    setParam(nodeId, param, value, coalesce) {
      const node = editor.getNode(nodeId);
      if (!node) return;
      const before = node.params[param];
      if (Object.is(before, value)) return;
      recordParamChange(history, { nodeId, param, before, after: value, coalesce }, applyParam);
      applyParam(nodeId, param, value);
    },
    async uploadImage(nodeId, param, file) {
      const res = await hooks.uploadImage(file);
      uploadedImages.set({ ...uploadedImages.get(), [res.name]: { url: res.url, width: res.width, height: res.height, fileName: file.name } });
      this.setParam(nodeId, param, res.name, false);
    },
  });

  return {
    addNode,
    snapshot,
    toGraph: (meta = {}) => snapshotToGraph(snapshot(), meta),
    load,
    undo: () => history.undo(),
    redo: () => history.redo(),
    async deleteSelected() {
      const ids = editor.getNodes().filter((n) => n.selected).map((n) => n.id);
      if (ids.length) await removeNodes(ids);
    },
    zoomToFit,
    async focusNode(id) {
      const node = editor.getNode(id);
      if (!node) return;
      await selectable.select(id, false);
      await AreaExtensions.zoomAt(area, [node], { scale: 0.5 });
    },
    destroy() {
      setBridge(null);
      container.removeEventListener('dblclick', onDblClick);
      container.removeEventListener('pointerdown', onPointerDown, true);
      area.destroy();
    },
  };
}

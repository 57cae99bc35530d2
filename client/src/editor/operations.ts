/**
 * What the editor does on request: add, remove, copy, paste, bypass/mute, rename, arrange, frame,
 * reroute, fit, load. Every user-visible change is one undo step; moves the studio makes by itself
 * (a grown node pushing its neighbours) are not recorded.
 */
import type { NodeEditor } from 'rete';
import type { AreaExtensions, AreaPlugin } from 'rete-area-plugin';
import type { ReroutePlugin } from 'rete-connection-reroute-plugin';
import type { HistoryPlugin } from 'rete-history-plugin';
import type { Catalog, CatalogNode } from '../../../server/protocol/catalog.ts';
import type { Graph, GraphGroup } from '../../../server/protocol/graph.ts';
import type { UploadResult } from '../api.ts';
import { copyOf, pastePlan, type ClipboardData } from '../clipboard.ts';
import {
  defaultParams,
  planImport,
  socketsFor,
  uniqueNodeId,
  type EditorConnectionDTO,
  type EditorNodeDTO,
  type EditorSnapshot,
  type Position,
} from '../graph-io.ts';
import { arrange, boundsOf, placeClear, resolveOverlaps, type Rect } from '../layout.ts';
import type { NodeRuntimeStore, Observable } from '../runtime.ts';
import { rememberUpload, type UploadedImage } from './bridge.ts';
import type { ChangeKind } from './schemes.ts';
import type { FramesLayer } from './frames.ts';
import { FnAction, recordAction, untracked } from './param-history.ts';
import { StudioNode, type Schemes } from './schemes.ts';
import { createView } from './view.ts';
import { createPins } from './pins.ts';
import { createPieces } from './pieces.ts';
import { createExposureEdits } from './exposure-edits.ts';
import { createNodeEdits, nextFrame } from './node-edits.ts';

/** A frame's margin around the nodes it holds, and the height of its title bar above them. */
const FRAME_PAD = 30;
const FRAME_TITLE = 26;

/** A frame (its other fields kept) fitted around a box of nodes. */
function frameAround<G extends Pick<GraphGroup, 'id' | 'title'>>(g: G, box: Omit<Rect, 'id'>): G & Pick<GraphGroup, 'x' | 'y' | 'width' | 'height'> {
  return {
    ...g,
    x: Math.round(box.x - FRAME_PAD),
    y: Math.round(box.y - FRAME_PAD - FRAME_TITLE),
    width: Math.round(box.width + 2 * FRAME_PAD),
    height: Math.round(box.height + 2 * FRAME_PAD + FRAME_TITLE),
  };
}

/** Space kept between nodes when the studio places them. */
const GAP = 24;

interface Context {
  editor: NodeEditor<Schemes>;
  area: AreaPlugin<Schemes, never>;
  history: HistoryPlugin<Schemes>;
  reroute: ReroutePlugin<Schemes>;
  selectable: ReturnType<typeof AreaExtensions.selectableNodes>;
  frames: FramesLayer;
  catalog: Catalog;
  specs: Map<string, CatalogNode>;
  colors: Map<string, string>;
  container: HTMLElement;
  state: { loading: boolean; relayout: boolean };
  changed(kind: ChangeKind): void;
  /** An edit could not be made; `message` says why. */
  onEditFailed(message: string): void;
  /** The run states of this graph's nodes (a removed node's go with it). */
  runtime: NodeRuntimeStore;
  uploads: Observable<Record<string, UploadedImage>>;
}

// The area is typed with our extra signals in create-editor; here only its base API is used.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the area carries create-editor.tsx's extra signals; only its base API is used here
type Ctx = Omit<Context, 'area'> & { area: AreaPlugin<Schemes, any> };

/**
 * The editor's operations, built in phases: the basics (nodes' boxes, selection, the view), the
 * graph in and out, the clipboard, and layout and frames; each an undo step where the user made it.
 */
export function createOperations(c: Ctx) {
  const { editor, area, history, changed, selectable, frames } = c;
  const basics = createBasics(c);
  const { selectedIds, select, pins, view, colorOf } = basics;

  const { capture, put, take } = createPieces({ editor, area, history, pins });
  const pieces = { capture, put, take };
  const { toggleMode, setTitle, setParam } = createNodeEdits({
    ...{ editor, area, history, changed, colorOf, pins, selectedIds },
    pieces: { put, take },
    onError: c.onEditFailed,
    runtime: c.runtime,
  });
  const { setExposed } = createExposureEdits({ editor, area, history, changed });

  const { addNode, removeNodes } = createNodeOps(c, basics, pieces);
  const { snapshot, addConnection, load } = createGraphIO(c, basics);
  const { copy, paste, duplicate } = createClipboardOps(c, basics, pieces, { snapshot, addConnection });
  const { arrangeAll, framesCommitted, addFrame, nodeResized } = createLayoutOps(c, basics);
  const { rects, shift } = basics;
  const { addPin, removePin } = pins;
  return {
    rects,
    snapshot,
    unfit: view.unfit,
    stop: view.stop,
    setParam,
    setTitle,
    setExposed,
    nodeResized,
    framesCommitted,
    shift,
    addPin,
    forget(id: string) {
      c.runtime.remove(id);
      // The selector keeps removed nodes (and the last picked one) otherwise: when undo brings
      // them back and places one, the area moves every node still 'selected' by the same offset.
      void selectable.unselect(id);
      changed('structure');
    },
    rememberUpload(res: UploadResult, fileName: string) {
      rememberUpload(c.uploads, res.name, { url: res.url, width: res.width, height: res.height, fileName: res.fileName ?? fileName });
    },
    api: {
      addNode,
      load,
      selectedIds,
      select,
      removeNodes,
      deleteSelected: async () => {
        const ids = selectedIds();
        if (ids.length) await removeNodes(ids);
      },
      copy,
      paste,
      duplicate,
      toggleMode,
      setTitle,
      arrange: arrangeAll,
      addFrame,
      editFrameTitle: (id: string) => frames.editTitle(id),
      removeFrame: (id: string) => frames.remove(id),
      addPin,
      removePin,
      removeConnection: async (id: string) => {
        history.separate();
        await editor.removeConnection(id);
        history.separate();
      },
      zoomToFit: view.zoomToFit,
      async focusNode(id: string) {
        if (!editor.getNode(id)) return;
        await select([id]);
        await view.focus(id);
      },
    },
  };
}

/** What every phase works with: node boxes, moves, the selection, reroute pins and the view. */
function createBasics(c: Ctx) {
  const { editor, area, history, reroute, selectable, frames, container, state, changed } = c;
  const colorOf = (type: string) => c.colors.get(type) ?? '#777';

  function createNode(
    dto: Pick<EditorNodeDTO, 'id' | 'type' | 'params' | 'title' | 'mode' | 'exposed'>,
    spec: CatalogNode | null,
    sockets?: ConstructorParameters<typeof StudioNode>[4],
  ): StudioNode {
    const s = sockets ?? socketsFor(spec!, dto.params);
    const node = new StudioNode(dto.id, dto.type, spec, dto.params, s, colorOf, dto.title, dto.mode);
    if (dto.exposed?.length) node.exposed = [...dto.exposed];
    return node;
  }

  /** Each node's box in graph units, as drawn. */
  function rects(): Rect[] {
    return editor.getNodes().map((n) => {
      const view = area.nodeViews.get(n.id);
      const el = view?.element.firstElementChild as HTMLElement | null | undefined;
      return { id: n.id, x: view?.position.x ?? 0, y: view?.position.y ?? 0, width: el?.offsetWidth || n.width, height: el?.offsetHeight || n.height };
    });
  }

  async function moveAll(moves: Map<string, Position>): Promise<void> {
    for (const [id, pos] of moves) await area.translate(id, pos);
  }

  function centerOfView(): Position {
    const { x, y, k } = area.area.transform;
    return { x: (container.clientWidth / 2 - x) / k, y: (container.clientHeight / 2 - y) / k };
  }

  const pins = createPins({ editor, area, history, reroute, changed });
  const view = createView({ area, container, state, boxes: () => [...rects(), ...frames.list()] });

  const selectedIds = () =>
    editor
      .getNodes()
      .filter((n) => n.selected)
      .map((n) => n.id);

  async function select(ids: string[]): Promise<void> {
    for (const n of editor.getNodes().filter((x) => x.selected)) await selectable.unselect(n.id);
    ids.forEach((id, i) => void selectable.select(id, i > 0));
  }

  /** Moves nodes by (dx, dy) without recording it: the action of the gesture that moved them does. */
  async function shift(ids: string[], dx: number, dy: number): Promise<void> {
    await untracked(history, async () => {
      for (const id of ids) {
        const view = area.nodeViews.get(id);
        if (view) await area.translate(id, { x: view.position.x + dx, y: view.position.y + dy });
      }
    });
  }

  return { colorOf, createNode, rects, moveAll, centerOfView, pins, view, selectedIds, select, shift };
}

type Basics = ReturnType<typeof createBasics>;

/** The graph in and out: the editor's content as a snapshot, and a graph loaded in its place. */
function createGraphIO(c: Ctx, b: Basics) {
  const { editor, area, history, reroute, frames, state } = c;
  const { createNode, moveAll, rects, view, pins } = b;

  function snapshot(): EditorSnapshot {
    return {
      nodes: editor.getNodes().map((n) => ({
        id: n.id,
        type: n.type,
        params: n.params,
        position: area.nodeViews.get(n.id)?.position ?? { x: 0, y: 0 },
        ...(n.customTitle ? { title: n.customTitle } : {}),
        ...(n.mode ? { mode: n.mode } : {}),
        ...(n.exposed?.length ? { exposed: [...n.exposed] } : {}),
      })),
      connections: editor.getConnections().map((x) => {
        const points = pins.pinsOf(x.id);
        return {
          source: x.source,
          sourceOutput: x.sourceOutput as string,
          target: x.target,
          targetInput: x.targetInput as string,
          ...(points.length ? { points } : {}),
        };
      }),
      groups: frames.list(),
    };
  }

  async function addConnection(x: EditorConnectionDTO, id = `${x.source}.${x.sourceOutput}->${x.target}.${x.targetInput}`): Promise<void> {
    if (!editor.getNode(x.source) || !editor.getNode(x.target)) return;
    const { points, ...ends } = x;
    await editor.addConnection({ id, ...ends } as Schemes['Connection']);
    if (!editor.getConnection(id)) return;
    for (const p of points ?? []) reroute.add(id, { ...p });
  }

  async function load(graph: Graph): Promise<string[]> {
    const plan = planImport(graph, c.catalog);
    state.loading = true;
    try {
      await editor.clear();
      for (const pin of reroute.pins.getPins()) reroute.pins.remove(pin.id);
      c.runtime.clear();
      for (const p of plan.nodes) {
        await editor.addNode(createNode(p.dto, p.spec, p.spec ? undefined : p));
        await area.translate(p.dto.id, p.dto.position);
      }
      for (const x of plan.connections) await addConnection(x);
      frames.set(graph.groups ?? []);
      // Let React lay the nodes out, then untangle nodes that overlap (files laid out for other
      // node sizes) and fit them into view.
      await nextFrame();
      await nextFrame();
      await moveAll(resolveOverlaps(rects(), GAP));
      await view.zoomToFit({ readable: true });
    } finally {
      state.loading = false;
      history.clear();
    }
    return plan.problems;
  }

  return { snapshot, addConnection, load };
}

/** Copy, paste and duplicate: pasted nodes land clear of the others, as one undo step. */
function createClipboardOps(
  c: Ctx,
  b: Basics,
  pieces: ReturnType<typeof createPieces>,
  io: { snapshot(): EditorSnapshot; addConnection(x: EditorConnectionDTO, id?: string): Promise<void> },
) {
  const { editor, area, history, specs } = c;
  const { createNode, rects, shift, select, selectedIds } = b;
  const { capture, put, take } = pieces;
  const { snapshot, addConnection } = io;

  async function paste(data: ClipboardData, opts: { at?: Position; keepInputs?: boolean } = {}): Promise<void> {
    const known = data.nodes.filter((n) => specs.has(n.type));
    if (known.length === 0) throw new Error('The copied nodes are of types this server does not have.');
    const plan = pastePlan(
      { ...data, nodes: known },
      new Set(editor.getNodes().map((n) => n.id)),
      opts.at ? { at: opts.at } : { offset: { x: 40, y: 40 } },
      opts.keepInputs,
    );
    const ids = plan.nodes.map((n) => n.id);
    await untracked(history, async () => {
      for (const n of plan.nodes) {
        await editor.addNode(createNode(n, specs.get(n.type)!));
        await area.translate(n.id, n.position);
      }
      for (const x of plan.connections) await addConnection(x, `${x.target}.${x.targetInput}<-${x.source}.${x.sourceOutput}#${Date.now().toString(36)}`);
      await nextFrame();
      // Where the pasted nodes would cover others, they go further down, together.
      const all = rects();
      const dy = placeClear(
        all.filter((r) => ids.includes(r.id)),
        all.filter((r) => !ids.includes(r.id)),
        GAP,
      );
      if (dy !== 0) await shift(ids, 0, dy);
    });
    const piece = capture(ids);
    recordAction(
      history,
      new FnAction(
        () => take(piece),
        () => put(piece),
      ),
    );
    await select(ids);
  }

  function copy(ids = selectedIds()): ClipboardData | null {
    return copyOf(snapshot(), ids);
  }

  async function duplicate(ids = selectedIds()): Promise<void> {
    const data = copy(ids);
    if (!data) return;
    // Beside the originals, to the right; paste moves them down if that is taken.
    const box = boundsOf(rects().filter((r) => ids.includes(r.id)));
    await paste(data, { at: { x: box.x + box.width + GAP * 2, y: box.y } });
  }

  return { copy, paste, duplicate };
}

/** Arranging the graph, frames around nodes, and nodes that grew pushing their neighbours. */
function createLayoutOps(c: Ctx, b: Basics) {
  const { editor, history, selectable, frames, state, changed } = c;
  const { rects, moveAll, view, selectedIds, centerOfView, shift } = b;

  async function arrangeAll(): Promise<void> {
    const boxes = rects();
    if (boxes.length === 0) return;
    const moves = arrange(
      boxes,
      editor.getConnections().map((x) => ({ source: x.source, target: x.target })),
    );
    const before = new Map(boxes.map((b) => [b.id, { x: b.x, y: b.y }]));
    // Frames go with the nodes they hold: each is fitted again around them where they land.
    const framesBefore = frames.list();
    const framesAfter = framesBefore.map((g) => {
      const held = boxes.filter((n) => n.x >= g.x && n.y >= g.y && n.x + n.width <= g.x + g.width && n.y + n.height <= g.y + g.height);
      if (held.length === 0) return g;
      const box = boundsOf(held.map((n) => ({ ...n, ...moves.get(n.id) })));
      return frameAround(g, box);
    });
    // One undo step, however long the moves take (the plugin would cut them into several).
    const place = async (to: Map<string, Position>, groups: GraphGroup[]) => {
      // A selected node drags the other selected ones along when it moves: each goes to its own place.
      for (const id of selectedIds()) await selectable.unselect(id);
      await untracked(history, () => moveAll(to));
      frames.set(groups);
      changed('structure');
    };
    recordAction(
      history,
      new FnAction(
        () => place(before, framesBefore),
        () => place(moves, framesAfter),
      ),
    );
    await place(moves, framesAfter);
    await view.zoomToFit();
  }

  /** One undo step per frame gesture, with the nodes a dragged frame carried. */
  function framesCommitted(before: GraphGroup[], carried?: { ids: string[]; dx: number; dy: number }): void {
    const after = frames.list();
    const apply = async (groups: GraphGroup[], sign: number) => {
      frames.set(groups);
      if (carried) await shift(carried.ids, sign * carried.dx, sign * carried.dy);
      changed('structure');
    };
    recordAction(
      history,
      new FnAction(
        () => apply(before, -1),
        () => apply(after, 1),
      ),
    );
    changed('structure');
  }

  function addFrame(opts: { ids?: string[]; at?: Position } = {}): void {
    const ids = opts.ids ?? selectedIds();
    const inside = rects().filter((r) => ids.includes(r.id));
    const box = inside.length ? boundsOf(inside) : { x: (opts.at ?? centerOfView()).x, y: (opts.at ?? centerOfView()).y, width: 400, height: 260 };
    const id = frames.freshId();
    frames.add(frameAround({ id, title: 'Group' }, box));
    frames.editTitle(id);
  }

  // A node grew (a preview, a warning, an error): what it now covers moves down, after this frame.
  let resizePending = false;
  function nodeResized(): void {
    if (state.loading || resizePending) return;
    resizePending = true;
    requestAnimationFrame(() => {
      resizePending = false;
      const moves = resolveOverlaps(rects(), GAP);
      if (moves.size === 0) return;
      state.relayout = true;
      void untracked(history, () => moveAll(moves)).finally(() => {
        state.relayout = false;
      });
    });
  }

  return { arrangeAll, framesCommitted, addFrame, nodeResized };
}

/** Adding a node where asked (else in the middle of the view), and deleting nodes: each one undo step. */
function createNodeOps(c: Ctx, b: Basics, pieces: ReturnType<typeof createPieces>) {
  const { editor, area, history, specs } = c;
  const { createNode, centerOfView, select } = b;
  const { capture, put, take } = pieces;

  async function addNode(type: string, at?: Position, params?: Record<string, unknown>): Promise<string> {
    const spec = specs.get(type);
    if (!spec) throw new Error(`Unknown node type "${type}"`);
    const node = createNode(
      {
        id: uniqueNodeId(
          type,
          editor.getNodes().map((n) => n.id),
        ),
        type,
        params: { ...defaultParams(spec), ...params },
      },
      spec,
    );
    history.separate();
    await editor.addNode(node);
    const pos = at ?? centerOfView();
    await area.translate(node.id, { x: pos.x - node.width / 2, y: pos.y - 40 });
    history.separate();
    await select([node.id]);
    return node.id;
  }

  /** Deletes nodes and their connections: one undo step, however long it takes. */
  async function removeNodes(ids: string[]): Promise<void> {
    const piece = capture(ids);
    recordAction(
      history,
      new FnAction(
        () => put(piece),
        () => take(piece),
      ),
    );
    await take(piece);
  }

  return { addNode, removeNodes };
}

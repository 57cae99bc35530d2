/**
 * Edits of one node's own state, each one undo step: its mode (bypass, mute), its title, a parameter
 * (a preset's title follows the prompt) and a count of sockets (a sampler's styles, whose removed
 * sockets take their connections with them).
 */
import type { NodeRuntimeStore } from '../runtime.ts';
import type { NodeEditor } from 'rete';
import type { AreaPlugin } from 'rete-area-plugin';
import type { HistoryPlugin } from 'rete-history-plugin';
import type { NodeMode } from '../../../server/protocol/graph.ts';
import { countParams, socketsFor } from '../graph-io.ts';
import { presetsOf, retitle } from '../titles.ts';
import type { ChangeKind } from './schemes.ts';
import { FnAction, recordAction, recordParamChange } from './param-history.ts';
import type { Piece } from './pieces.ts';
import type { createPins } from './pins.ts';
import type { Schemes, StudioNode } from './schemes.ts';

/** Resolves after the next frame is drawn (sockets just set have their views). */
export const nextFrame = () => new Promise<void>((resolve) => requestAnimationFrame(() => resolve()));

/** What the edits of a node work with. */
interface EditContext {
  editor: NodeEditor<Schemes>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the area carries create-editor.tsx's extra signals; only its base API is used here
  area: AreaPlugin<Schemes, any>;
  history: HistoryPlugin<Schemes>;
  changed(kind: ChangeKind): void;
  colorOf(type: string): string;
  pieces: { put(piece: Piece): Promise<void>; take(piece: Piece): Promise<void> };
  pins: ReturnType<typeof createPins>;
  selectedIds(): string[];
  /** An edit that could not be made: `message` says why. */
  onError(message: string): void;
  /** The run states of the graph's nodes (an edit clears a failure shown there). */
  runtime: NodeRuntimeStore;
}

export function createNodeEdits(c: EditContext) {
  const { editor, area, history, changed, colorOf, pins } = c;
  const { put, take } = c.pieces;

  /** Sets a parameter; a title that named the old prompt (a preset, its first words) names the new one. */
  function applyParam(nodeId: string, param: string, value: unknown): void {
    const node = editor.getNode(nodeId);
    if (!node) return;
    const presets = presetsOf(node.spec?.params.find((p) => p.name === param)?.ui);
    const title = retitle(node.customTitle, node.params[param], value, presets);
    if (value === undefined) delete node.params[param];
    else node.params[param] = value;
    if (title !== node.customTitle) {
      node.customTitle = title;
      node.label = title || node.spec?.title || node.type;
    }
    // A count of sockets (a sampler's styles): the sockets follow it.
    if (node.spec && countParams(node.spec).has(param)) node.setInputs(socketsFor(node.spec, node.params).inputs, colorOf);
    // A run's failure was about the values it ran with: changed, the node no longer shows it (the next run tells).
    const rt = c.runtime.get(nodeId);
    if (rt.status === 'failed' || rt.error) c.runtime.update(nodeId, { status: 'idle', error: undefined });
    void area.update('node', nodeId);
    changed('params');
  }

  function setParam(nodeId: string, param: string, value: unknown, coalesce: boolean): void {
    const node = editor.getNode(nodeId);
    if (!node) return;
    const before = node.params[param];
    if (Object.is(before, value)) return;
    if (node.spec && countParams(node.spec).has(param)) {
      setCount(node, param, value).catch((err: Error) => c.onError(`Could not change ${param}: ${err.message}`));
      return;
    }
    recordParamChange(history, { nodeId, param, before, after: value, coalesce }, applyParam);
    applyParam(nodeId, param, value);
  }

  /**
   * Changes a count of sockets (styles) as one undo step: the connections into sockets it removes go
   * with them, and undo gives the sockets back with their connections.
   */
  async function setCount(node: StudioNode, param: string, value: unknown): Promise<void> {
    const before = node.params[param];
    const kept = new Set(socketsFor(node.spec!, { ...node.params, [param]: value }).inputs.map((s) => s.name));
    const cut: Piece = {
      nodes: [],
      connections: editor
        .getConnections()
        .filter((x) => x.target === node.id && !kept.has(x.targetInput as string))
        .map((connection) => ({ connection, points: pins.pinsOf(connection.id) })),
    };
    const apply = async (v: unknown, restore: boolean) => {
      if (!restore) await take(cut);
      applyParam(node.id, param, v);
      if (restore) {
        // The sockets are drawn first, so the connections find them.
        await nextFrame();
        await put(cut);
      }
    };
    // Recorded once it is done: an undo pressed meanwhile, or a failure, finds no half-made step.
    await apply(value, false);
    recordAction(
      history,
      new FnAction(
        () => apply(before, true),
        () => apply(value, false),
      ),
    );
  }

  return { ...createModeAndTitleEdits(c), setParam };
}

/** A node's mode (bypass, mute) and its title, each change one undo step. */
function createModeAndTitleEdits(c: EditContext) {
  const { editor, area, history, changed, selectedIds } = c;

  function setModes(modes: Map<string, NodeMode | undefined>): void {
    for (const [id, mode] of modes) {
      const node = editor.getNode(id);
      if (!node) continue;
      node.mode = mode;
      void area.update('node', id);
    }
    changed('params');
  }

  function toggleMode(mode: NodeMode, ids = selectedIds()): void {
    const nodes = ids.map((id) => editor.getNode(id)).filter((n): n is StudioNode => Boolean(n));
    if (nodes.length === 0) return;
    const next = nodes.every((n) => n.mode === mode) ? undefined : mode;
    const before = new Map(nodes.map((n) => [n.id, n.mode]));
    const after = new Map(nodes.map((n) => [n.id, next]));
    recordAction(
      history,
      new FnAction(
        () => setModes(before),
        () => setModes(after),
      ),
    );
    setModes(after);
  }

  function applyTitle(nodeId: string, title: string | undefined): void {
    const node = editor.getNode(nodeId);
    if (!node) return;
    node.customTitle = title || undefined;
    node.label = title || node.spec?.title || node.type;
    void area.update('node', nodeId);
    changed('params');
  }

  function setTitle(nodeId: string, title: string | undefined): void {
    const node = editor.getNode(nodeId);
    const next = title?.trim() || undefined;
    if (!node || node.customTitle === next) return;
    const before = node.customTitle;
    recordAction(
      history,
      new FnAction(
        () => applyTitle(nodeId, before),
        () => applyTitle(nodeId, next),
      ),
    );
    applyTitle(nodeId, next);
  }

  return { toggleMode, setTitle };
}

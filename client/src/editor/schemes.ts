/** Rete classes of the studio: typed sockets, catalog-driven nodes, connections. */
import { ClassicPreset, type GetSchemes } from 'rete';
import type { CatalogNode } from '../../../server/protocol/catalog.ts';
import type { NodeMode } from '../../../server/protocol/graph.ts';
import { socketsCompatible, type PlannedSocket } from '../graph-io.ts';

/** What an edit changed: the autosave, undo history and validation each care about some of these. */
export type ChangeKind = 'structure' | 'params' | 'position' | 'layout';

/** A socket that knows its type; `ClassicPreset.Socket` itself only has a name. */
export class TypedSocket extends ClassicPreset.Socket {
  constructor(
    readonly type: string,
    readonly color: string,
  ) {
    super(type);
  }

  isCompatibleWith(input: TypedSocket): boolean {
    return socketsCompatible(this.type, input.type);
  }
}

export interface SocketInfo {
  optional?: boolean;
  description?: string;
  /** A member (1-based `index`) of a variadic family. */
  family?: string;
  index?: number;
}

export const NODE_WIDTH = 280;

/** One node of the graph. Params live on the node; controls are rendered by our own node view. */
export class StudioNode extends ClassicPreset.Node<Record<string, TypedSocket>, Record<string, TypedSocket>> {
  width = NODE_WIDTH;
  /** Measured after render; used by the minimap and zoom-to-fit. */
  height = 120;
  readonly type: string;
  /** Null for a placeholder of a node type the server does not know. */
  readonly spec: CatalogNode | null;
  params: Record<string, unknown>;
  customTitle?: string;
  /** Bypassed or muted (absent: the node runs). */
  mode?: NodeMode;
  /** The parameters simple mode shows, in its order (absent: none). */
  exposed?: string[];
  readonly socketInfo = new Map<string, SocketInfo>();

  constructor(
    id: string,
    type: string,
    spec: CatalogNode | null,
    params: Record<string, unknown>,
    sockets: { inputs: PlannedSocket[]; outputs: PlannedSocket[] },
    colorOf: (type: string) => string,
    title?: string,
    mode?: NodeMode,
  ) {
    super(title || spec?.title || type);
    this.mode = mode;
    // Ids come from the graph file (or uniqueNodeId); Rete's random id would break the round trip.
    this.id = id;
    this.type = type;
    this.spec = spec;
    this.params = params;
    this.customTitle = title;
    this.setInputs(sockets.inputs, colorOf);
    for (const s of sockets.outputs) {
      this.addOutput(s.name, new ClassicPreset.Output(new TypedSocket(s.type, colorOf(s.type)), s.label, true));
      this.socketInfo.set(`out:${s.name}`, { description: s.description });
    }
  }

  /**
   * Gives the node exactly these inputs, in this order: inputs it keeps stay the same objects (their
   * connections stay drawn), new ones are made, the rest go. A sampler whose style count changes.
   * Connections into inputs that go must be removed first (the editor does).
   */
  setInputs(inputs: PlannedSocket[], colorOf: (type: string) => string): void {
    const next: typeof this.inputs = {};
    for (const s of inputs) {
      next[s.name] = this.inputs[s.name] ?? new ClassicPreset.Input(new TypedSocket(s.type, colorOf(s.type)), s.label, false);
      this.socketInfo.set(`in:${s.name}`, { optional: s.optional, description: s.description, family: s.family, index: s.index });
    }
    for (const name of Object.keys(this.inputs)) if (!(name in next)) this.socketInfo.delete(`in:${name}`);
    this.inputs = next;
  }
}

// Typed against the base Node: the classic render preset requires exactly that connection shape.
export class StudioConnection extends ClassicPreset.Connection<ClassicPreset.Node, ClassicPreset.Node> {}

export type Schemes = GetSchemes<StudioNode, StudioConnection>;

/** The node catalog as served by GET /api/catalog: enough for the client to render any node. */

/**
 * A numbered family of input sockets, `name1` … `nameN`, whose count N is the node's whole-number
 * parameter `param` (min ≤ N ≤ max): a sampler's style inputs, one per style. Old graphs that wired
 * `style1` and `style2` are a family of two.
 */
export interface VariadicSockets {
  param: string;
  min: number;
  max: number;
}

export interface CatalogSocket {
  name: string;
  /** A socket type of the catalog's `socketTypes`: a built-in one (SOCKET_TYPES) or one a node package added. */
  type: string;
  label: string;
  description?: string;
  /** Inputs only: may stay unconnected. */
  optional?: boolean;
  /** Inputs only: this entry stands for the sockets name1..nameN (see VariadicSockets). */
  variadic?: VariadicSockets;
}

/**
 * N of a family for a node's parameter values: the parameter's value, clamped to min..max; `fallback`
 * (the parameter's default) when it is not a whole number yet.
 */
export function variadicCount(v: VariadicSockets, params: Readonly<Record<string, unknown>> | undefined, fallback = v.min): number {
  const raw = params?.[v.param];
  const n = typeof raw === 'number' && Number.isInteger(raw) ? raw : fallback;
  return Math.min(v.max, Math.max(v.min, n));
}

/** A socket of a node as it is drawn and wired: a family member knows its family and 1-based index. */
export type ExpandedSocket<S> = Omit<S, 'variadic'> & { family?: string; index?: number };

/**
 * The sockets a node has for its parameter values: plain sockets as they are, each variadic family as
 * name1..nameN, labelled "label 1" … "label N", in the family's place. `fallback` gives a family's
 * count when the parameter is unset (its default).
 */
export function expandSockets<S extends { name: string; label?: string; variadic?: VariadicSockets }>(
  sockets: readonly S[],
  params: Readonly<Record<string, unknown>> | undefined,
  fallback?: (v: VariadicSockets) => number | undefined,
): ExpandedSocket<S>[] {
  return sockets.flatMap((s): ExpandedSocket<S>[] => {
    const { variadic, ...plain } = s;
    if (!variadic) return [plain];
    const n = variadicCount(variadic, params, fallback?.(variadic));
    return Array.from({ length: n }, (_, i) => ({ ...plain, name: `${s.name}${i + 1}`, label: `${s.label ?? s.name} ${i + 1}`, family: s.name, index: i + 1 }));
  });
}

export type ParamKind = 'number' | 'integer' | 'string' | 'text' | 'enum' | 'boolean' | 'image' | 'model' | 'painting';

export interface CatalogParam {
  name: string;
  label: string;
  kind: ParamKind;
  description?: string;
  default?: unknown;
  min?: number;
  max?: number;
  step?: number;
  options?: string[];
  optional?: boolean;
  /** Free-form UI hints from the node's schema (`.meta({ ui: {...} })`): slider, multiline, presets... */
  ui?: Record<string, unknown>;
  /** JSON Schema of the parameter, for clients that want the full detail. */
  schema: unknown;
}

export interface CatalogNode {
  type: string;
  title: string;
  category: string;
  description: string;
  inputs: CatalogSocket[];
  outputs: CatalogSocket[];
  params: CatalogParam[];
  /** Output nodes (save/preview) are where a job's results come from. */
  output: boolean;
}

/** What a socket carries, and how the editor draws it. An output connects to inputs of its own type only. */
export interface CatalogSocketType {
  type: string;
  /** CSS colour, "#rrggbb". */
  color: string;
  description?: string;
  /** The node package that added it; absent for the built-in types. */
  package?: string;
}

/** A node package found at start (custom nodes): what it added, or why it was left out. */
export interface CatalogPackage {
  /** Its package.json name (the folder's name when that cannot be read). */
  name: string;
  version?: string;
  /** The node types it added (none when it failed). */
  nodes: string[];
  socketTypes: string[];
  /** Why the studio started without it; absent when it loaded. */
  error?: string;
}

export interface Catalog {
  socketTypes: CatalogSocketType[];
  nodes: CatalogNode[];
  /** The node packages found at start, loaded or not (absent or empty: none). */
  packages?: CatalogPackage[];
}

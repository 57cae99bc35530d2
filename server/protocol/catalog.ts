/** The node catalog as served by GET /api/catalog: enough for the client to render any node. */
import type { SocketType } from './graph.ts';

export interface CatalogSocket {
  name: string;
  type: SocketType;
  label: string;
  description?: string;
  /** Inputs only: may stay unconnected. */
  optional?: boolean;
}

export type ParamKind = 'number' | 'integer' | 'string' | 'text' | 'enum' | 'boolean' | 'image' | 'model';

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

export interface Catalog {
  socketTypes: { type: SocketType; color: string }[];
  nodes: CatalogNode[];
}

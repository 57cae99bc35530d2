/**
 * The node API: what a node package (custom nodes, loaded at start from `<data>/custom_nodes/` and
 * `--nodes DIR`) gets from the studio. It is versioned: NODE_API_VERSION goes up when something here
 * changes in a way an existing package could notice, and a package names the version it was written for
 * in its package.json (`"dualstyle": { "entry": "./index.js", "api": 1 }`); the studio refuses a package
 * written for another one.
 *
 * A package's entry module exports one function as its default; the studio calls it with `nodeApi`
 * (below) and gets the package's nodes and socket types back. The package builds everything from the
 * API it is handed — `api.z` for parameter schemas (the studio reads ranges, defaults, `.describe()`
 * and `.meta({ label, step, ui })` client hints from them: they must be the studio's zod),
 * `api.defineNode`, `api.defineSocketType` — so it imports nothing of the studio at run time and its
 * types can come from this module alone:
 *
 *   import type { NodeApi } from 'dualstyle-studio/nodes/api.ts';
 *   export default function register(api: NodeApi) {
 *     const { z, defineNode } = api;
 *     return { nodes: [defineNode({ type: 'MyNode', ... })] };
 *   }
 *
 * Node packages are trusted code: they run in the studio's process with its rights.
 */
import { z } from 'zod';
import { CancelledError, UserError } from '../server/engine/errors.ts';
import { encodePng, imageToRgbBytes, resizeImage, rgbBytesToImage } from '../server/engine/images/pixels.ts';
import { defineNode, type AnyNodeDefinition } from './types.ts';

/** The version of this API. A package asks for it in package.json (`dualstyle.api`). */
export const NODE_API_VERSION = 1;

/** A socket type a package adds: connectable only to sockets of the same type; drawn in `color`. */
export interface SocketTypeSpec {
  /** Its name in node definitions and the catalog, e.g. "Palette": a capital letter, then letters and digits. */
  type: string;
  /** The editor's colour for it, "#rrggbb". */
  color: string;
  /** What a value of this type is, for the catalog. */
  description?: string;
}

/** Declares a socket type (an identity helper, like defineNode, for the types and the reader). */
export function defineSocketType(spec: SocketTypeSpec): SocketTypeSpec {
  return spec;
}

/** What a package's entry function returns. */
export interface NodePackageContents {
  nodes: AnyNodeDefinition[];
  socketTypes?: SocketTypeSpec[];
}

/** What the studio hands a package's entry function. */
export const nodeApi = {
  version: NODE_API_VERSION,
  defineNode,
  defineSocketType,
  /** The studio's zod: parameter schemas must be built with it. */
  z,
  /** A problem the user can fix (shown on the node, never retried); `field` names the parameter. */
  UserError,
  /** Throw it when `ctx.signal` is aborted between steps. */
  CancelledError,
  /** Images are CHW float in [0,1] (ImageValue); these convert them and encode PNGs for ctx.saveResult. */
  images: { encodePng, rgbBytesToImage, imageToRgbBytes, resizeImage },
} as const;

export type NodeApi = typeof nodeApi;

/** The default export of a package's entry module. */
export type NodePackageEntry = (api: NodeApi) => NodePackageContents | Promise<NodePackageContents>;

export type {
  AnyNodeDefinition,
  InputSpec,
  Logger,
  NodeContext,
  NodeDefinition,
  NodePlan,
  NodeRunResult,
  OutputSpec,
  PlannedValue,
  PreviewSource,
  ResultImage,
  Services,
  SocketType,
  SocketTypeName,
  ValueOf,
} from './types.ts';
export type { ClipValue, ConditioningValue, ImageValue, InversionValue, LatentValue, MaskValue, MetricsValue, ModelValue, SocketValues } from './values.ts';

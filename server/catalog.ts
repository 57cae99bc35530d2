/**
 * The node catalog: node definitions by type, and the JSON the client renders every node from.
 * Parameter descriptions are derived from each node's zod object alone (ranges, defaults, enum options,
 * `.describe()` text and `.meta({ label, step, ui })` hints), so a new node needs no client code.
 */
import { z } from 'zod';
import { SOCKET_COLORS, SOCKET_TYPES } from './protocol/graph.ts';
import type { Catalog, CatalogNode, CatalogPackage, CatalogParam, CatalogSocket, CatalogSocketType, ParamKind } from './protocol/catalog.ts';
import type { AnyNodeDefinition, InputSpec, OutputSpec } from '../nodes/types.ts';

/**
 * Node definitions by type, with the socket types they may use (the built-in ones, then those node
 * packages added) and the node packages found at start.
 */
export type NodeCatalog = Map<string, AnyNodeDefinition> & { socketTypes?: readonly CatalogSocketType[]; packages?: readonly CatalogPackage[] };

/** The built-in socket types, as the catalog serves them. */
export const BUILTIN_SOCKET_TYPES: readonly CatalogSocketType[] = SOCKET_TYPES.map((type) => ({ type, color: SOCKET_COLORS[type] }));

/** What node packages add besides nodes: their socket types, and the report of every package found. */
export interface CatalogExtras {
  socketTypes?: readonly CatalogSocketType[];
  packages?: readonly CatalogPackage[];
}

/**
 * Builds the catalog; throws on a duplicate type, a socket type it does not know or a malformed
 * definition (a programming error in a built-in node; a node package's is caught by its loader).
 */
export function createCatalog(defs: AnyNodeDefinition[], extras: CatalogExtras = {}): NodeCatalog {
  const socketTypes = [...BUILTIN_SOCKET_TYPES, ...(extras.socketTypes ?? [])];
  const known = new Set<string>();
  for (const t of socketTypes) {
    if (known.has(t.type)) throw new Error(`Socket type "${t.type}" is declared twice${t.package ? ` (again by node package ${t.package})` : ''}.`);
    known.add(t.type);
  }
  const catalog: NodeCatalog = Object.assign(new Map<string, AnyNodeDefinition>(), { socketTypes, packages: extras.packages ?? [] });
  for (const def of defs) {
    if (!def || typeof def.type !== 'string' || def.type.length === 0) {
      throw new Error('A node definition has no "type".');
    }
    if (catalog.has(def.type)) throw new Error(`Duplicate node type "${def.type}" in the catalog.`);
    if (!(def.params instanceof z.ZodObject)) {
      throw new Error(`Node type "${def.type}": "params" must be a zod object (z.object({...})).`);
    }
    for (const [kind, sockets] of [
      ['input', def.inputs],
      ['output', def.outputs],
    ] as const) {
      for (const [name, spec] of Object.entries(sockets as Record<string, InputSpec | OutputSpec>)) {
        if (!known.has(spec.type)) {
          throw new Error(`Node type "${def.type}": ${kind} "${name}" has unknown socket type "${spec.type}".`);
        }
        for (const param of ['variadic' in spec ? spec.variadic?.param : undefined, spec.countParam]) {
          if (param !== undefined && !Object.hasOwn((def.params as z.ZodObject).shape, param)) {
            throw new Error(`Node type "${def.type}": ${kind} "${name}" counts by the parameter "${param}", which the node does not have.`);
          }
        }
      }
    }
    catalog.set(def.type, def);
  }
  return catalog;
}

/** The catalog as served by GET /api/catalog. */
export function catalogJson(catalog: NodeCatalog): Catalog {
  return {
    socketTypes: [...(catalog.socketTypes ?? BUILTIN_SOCKET_TYPES)],
    nodes: [...catalog.values()].map(nodeJson),
    ...(catalog.packages?.length ? { packages: [...catalog.packages] } : {}),
  };
}

function nodeJson(def: AnyNodeDefinition): CatalogNode {
  return {
    type: def.type,
    title: def.title,
    category: def.category,
    description: def.description,
    inputs: Object.entries(def.inputs as Record<string, InputSpec>).map(([name, spec]) => socketJson(name, spec, spec.optional)),
    outputs: Object.entries(def.outputs as Record<string, OutputSpec>).map(([name, spec]) => socketJson(name, spec)),
    params: Object.entries((def.params as z.ZodObject).shape).map(([name, field]) => paramJson(name, field as z.ZodType)),
    output: def.output === true,
  };
}

function socketJson(name: string, spec: InputSpec | OutputSpec, optional?: boolean): CatalogSocket {
  const variadic = 'variadic' in spec ? spec.variadic : undefined;
  return {
    name,
    type: spec.type,
    label: spec.label ?? humanize(name),
    ...(spec.description ? { description: spec.description } : {}),
    ...(optional ? { optional: true } : {}),
    ...(variadic ? { variadic: { ...variadic } } : {}),
  };
}

/** Describes one parameter from its zod schema (and the metadata attached anywhere in its wrappers). */
function paramJson(name: string, field: z.ZodType): CatalogParam {
  const meta = collectMeta(field);
  const schema = fieldJsonSchema(field);
  const core = pickCore(schema);
  const ui = isRecord(meta.ui) ? meta.ui : undefined;

  let kind: ParamKind;
  const options = Array.isArray(core.enum) && core.enum.every((o) => typeof o === 'string') ? (core.enum as string[]) : undefined;
  if (options) kind = 'enum';
  else if (core.type === 'integer') kind = 'integer';
  else if (core.type === 'number') kind = 'number';
  else if (core.type === 'boolean') kind = 'boolean';
  else if (core.type === 'string' && typeof core.const === 'string') kind = 'enum';
  else kind = ui?.multiline === true ? 'text' : 'string';
  if (typeof ui?.kind === 'string' && PARAM_KINDS.has(ui.kind as ParamKind)) kind = ui.kind as ParamKind;

  const min = bound(core.minimum ?? core.exclusiveMinimum);
  const max = bound(core.maximum ?? core.exclusiveMaximum);
  const step = typeof meta.step === 'number' ? meta.step : kind === 'integer' ? 1 : undefined;
  const description = typeof meta.description === 'string' ? meta.description : field.description;
  const hasDefault = 'default' in schema;
  const optional = !hasDefault && field.safeParse(undefined).success;

  return {
    name,
    label: typeof meta.label === 'string' ? meta.label : humanize(name),
    kind,
    ...(description ? { description } : {}),
    ...(hasDefault ? { default: schema.default } : {}),
    ...(min !== undefined ? { min } : {}),
    ...(max !== undefined ? { max } : {}),
    ...(step !== undefined ? { step } : {}),
    ...(options ? { options } : kind === 'enum' && typeof core.const === 'string' ? { options: [core.const] } : {}),
    ...(optional ? { optional: true } : {}),
    ...(ui ? { ui } : {}),
    schema,
  };
}

const PARAM_KINDS = new Set<ParamKind>(['number', 'integer', 'string', 'text', 'enum', 'boolean', 'image', 'model', 'painting']);

/** "sourcePrompt" / "source_prompt" → "Source prompt". */
export function humanize(name: string): string {
  const words = name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/[_\-.]+/g, ' ')
    .trim()
    .toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/**
 * Merges `.meta()` objects from the innermost schema outwards (outer wins), so
 * `z.number().meta({ step: 1 }).default(3).meta({ label: 'X' })` yields both.
 */
function collectMeta(field: z.ZodType): Record<string, unknown> {
  const chain: z.ZodType[] = [];
  let s: z.ZodType | undefined = field;
  for (let depth = 0; s && depth < 20; depth++) {
    chain.push(s);
    s = unwrapOnce(s);
  }
  const meta: Record<string, unknown> = {};
  for (const schema of chain.reverse()) Object.assign(meta, z.globalRegistry.get(schema) ?? {});
  return meta;
}

function unwrapOnce(s: z.ZodType): z.ZodType | undefined {
  const def = (s as unknown as { _zod: { def: { type: string; innerType?: z.ZodType; in?: z.ZodType } } })._zod.def;
  switch (def.type) {
    case 'default':
    case 'prefault':
    case 'optional':
    case 'nullable':
    case 'nonoptional':
    case 'readonly':
    case 'catch':
      return def.innerType;
    case 'pipe':
      return def.in;
    default:
      return undefined;
  }
}

function fieldJsonSchema(field: z.ZodType): Record<string, unknown> {
  try {
    const { $schema: _drop, ...rest } = z.toJSONSchema(field, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
    return rest;
  } catch {
    // A schema JSON Schema cannot express (e.g. a recursive custom type): the client falls back to text.
    return {};
  }
}

/** The non-null branch of a nullable/anyOf schema, which is where type and bounds live. */
function pickCore(schema: Record<string, unknown>): Record<string, unknown> {
  const branches = (schema.anyOf ?? schema.oneOf) as Record<string, unknown>[] | undefined;
  if (Array.isArray(branches)) {
    const nonNull = branches.filter((b) => isRecord(b) && b.type !== 'null');
    if (nonNull.length === 1) return { ...nonNull[0], ...withoutKeys(schema, ['anyOf', 'oneOf']) };
  }
  return schema;
}

/** z.number().int() carries ±MAX_SAFE_INTEGER bounds: those are not a range the user should see. */
function bound(v: unknown): number | undefined {
  return typeof v === 'number' && Math.abs(v) < Number.MAX_SAFE_INTEGER ? v : undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function withoutKeys(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([k]) => !keys.includes(k)));
}

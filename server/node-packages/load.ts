/**
 * Node packages (custom nodes), loaded at start: every folder in `<data>/custom_nodes/` and every
 * `--nodes DIR`. A package is an npm package folder whose package.json names its entry module and the
 * node API version it was written for — `"dualstyle": { "entry": "./index.ts", "api": 1 }` — and whose
 * entry's default export is a function of the node API (nodes/api.ts) returning its nodes and socket
 * types. A package that cannot be loaded (no package.json or no "dualstyle" entry, an entry that is
 * missing or throws, another API version, a node or socket type the studio already has, a malformed
 * node) is left out whole, with the reason in the log and in the catalog the editor shows; the studio
 * starts without it. Packages are trusted code: they run in the studio's process.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { NODE_API_VERSION, nodeApi, type NodePackageContents, type SocketTypeSpec } from '../../nodes/api.ts';
import type { AnyNodeDefinition } from '../../nodes/types.ts';
import { BUILTIN_SOCKET_TYPES, createCatalog } from '../catalog.ts';
import type { CatalogPackage, CatalogSocketType } from '../protocol/catalog.ts';
import type { Logger } from '../util/log.ts';

/** The folder in the data folder whose sub-folders are node packages. */
export const CUSTOM_NODES_FOLDER = 'custom_nodes';

/** What the packages add to the catalog, and a report of every package found. */
export interface LoadedNodePackages {
  nodes: AnyNodeDefinition[];
  socketTypes: CatalogSocketType[];
  packages: CatalogPackage[];
}

const PackageJsonSchema = z.object({
  name: z.string().min(1).optional(),
  version: z.string().optional(),
  dualstyle: z
    .object({
      entry: z.string().min(1),
      api: z.number().int().positive(),
    })
    .optional(),
});

const SOCKET_TYPE_NAME = /^[A-Z][A-Za-z0-9]{0,31}$/;
const COLOR = /^#[0-9a-fA-F]{6}$/;

/** A package that cannot be loaded: its message says why, in words its author can act on. */
class PackageProblem extends Error {}

/** The package folders to load: `<data>/custom_nodes/*` (by name, hidden ones left out), then `extra` in order. */
export async function nodePackageFolders(dataDir: string, extra: readonly string[]): Promise<string[]> {
  const root = path.join(dataDir, CUSTOM_NODES_FOLDER);
  let found: string[] = [];
  try {
    found = (await readdir(root, { withFileTypes: true }))
      .filter((d) => (d.isDirectory() || d.isSymbolicLink()) && !d.name.startsWith('.'))
      .map((d) => path.join(root, d.name))
      .sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return [...found, ...extra.map((d) => path.resolve(d))];
}

/**
 * Loads the packages in `folders`, in order, next to the built-in nodes: each one whole or not at all.
 * Never throws for a package's fault; every package found is in `packages`, with `error` when left out.
 */
export async function loadNodePackages(folders: readonly string[], builtins: readonly AnyNodeDefinition[], log: Logger): Promise<LoadedNodePackages> {
  const out: LoadedNodePackages = { nodes: [], socketTypes: [], packages: [] };
  const nodeOwners = new Map<string, string>(builtins.map((d) => [d.type, 'a built-in node']));
  const socketOwners = new Map<string, string>(BUILTIN_SOCKET_TYPES.map((t) => [t.type, 'a built-in socket type']));
  for (const dir of folders) {
    let name = path.basename(dir);
    let version: string | undefined;
    try {
      const manifest = await readManifest(dir);
      name = manifest.name ?? name;
      version = manifest.version;
      const contents = await runEntry(dir, entryOf(manifest));
      const socketTypes = checkSocketTypes(contents.socketTypes ?? [], socketOwners, name);
      for (const def of contents.nodes) {
        const owner = typeof def?.type === 'string' ? nodeOwners.get(def.type) : undefined;
        if (owner) throw new PackageProblem(`its node type "${def.type}" clashes with ${owner}`);
      }
      try {
        // The checks every catalog makes (sockets, parameters, duplicates), on the catalog as it would be.
        createCatalog([...builtins, ...out.nodes, ...contents.nodes], { socketTypes: [...out.socketTypes, ...socketTypes] });
      } catch (err) {
        throw new PackageProblem((err as Error).message);
      }
      out.nodes.push(...contents.nodes);
      out.socketTypes.push(...socketTypes);
      for (const def of contents.nodes) nodeOwners.set(def.type, `node package ${name}`);
      for (const t of socketTypes) socketOwners.set(t.type, `node package ${name}`);
      const types = contents.nodes.map((d) => d.type);
      out.packages.push({ name, ...(version ? { version } : {}), nodes: types, socketTypes: socketTypes.map((t) => t.type) });
      log.info(`node package ${name}${version ? ` ${version}` : ''} loaded from ${dir}: ${types.join(', ') || 'no nodes'}`);
    } catch (err) {
      const reason = err instanceof PackageProblem ? err.message : `its entry failed: ${(err as Error)?.message ?? String(err)}`;
      const error = reason.split(dir).join(`<${path.basename(dir)}>`);
      out.packages.push({ name, ...(version ? { version } : {}), nodes: [], socketTypes: [], error });
      log.error(`node package ${name} (${dir}) not loaded: ${reason}; the studio starts without it`);
    }
  }
  return out;
}

async function readManifest(dir: string): Promise<z.infer<typeof PackageJsonSchema>> {
  let text: string;
  try {
    text = await readFile(path.join(dir, 'package.json'), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new PackageProblem(code === 'ENOENT' ? 'no package.json in its folder (or no such folder)' : `its package.json cannot be read (${code})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new PackageProblem(`its package.json is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = PackageJsonSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new PackageProblem(`its package.json: "${issue.path.join('.')}" ${issue.message}`);
  }
  return parsed.data;
}

/** The entry module a package.json names, once it asks for this studio's node API. */
function entryOf({ dualstyle }: z.infer<typeof PackageJsonSchema>): string {
  if (!dualstyle) {
    throw new PackageProblem(`its package.json has no "dualstyle" entry: add "dualstyle": { "entry": "./index.js", "api": ${NODE_API_VERSION} }`);
  }
  if (dualstyle.api !== NODE_API_VERSION) {
    throw new PackageProblem(`it was written for node API ${dualstyle.api}, and this studio offers node API ${NODE_API_VERSION}`);
  }
  return dualstyle.entry;
}

/** Imports the entry module and calls its default export with the node API. */
async function runEntry(dir: string, entry: string): Promise<NodePackageContents> {
  const file = path.resolve(dir, entry);
  const rel = path.relative(dir, file);
  if (rel.startsWith('..') || path.isAbsolute(rel)) throw new PackageProblem(`its entry "${entry}" is outside its folder`);
  try {
    if (!(await stat(file)).isFile()) throw new Error('not a file');
  } catch {
    throw new PackageProblem(`its entry "${entry}" is not there`);
  }
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
  } catch (err) {
    throw new PackageProblem(`its entry "${entry}" threw while loading: ${(err as Error)?.message ?? String(err)}`);
  }
  if (typeof mod.default !== 'function') {
    throw new PackageProblem(`its entry "${entry}" has no default export function (export default function register(api) { return { nodes: [...] }; })`);
  }
  let contents: unknown;
  try {
    contents = await (mod.default as (api: typeof nodeApi) => unknown)(nodeApi);
  } catch (err) {
    throw new PackageProblem(`its entry function threw: ${(err as Error)?.message ?? String(err)}`);
  }
  const c = contents as Partial<NodePackageContents> | null | undefined;
  if (!c || !Array.isArray(c.nodes) || (c.socketTypes !== undefined && !Array.isArray(c.socketTypes))) {
    throw new PackageProblem('its entry function must return { nodes: [...], socketTypes?: [...] }');
  }
  return c as NodePackageContents;
}

function checkSocketTypes(specs: readonly SocketTypeSpec[], owners: ReadonlyMap<string, string>, pkg: string): CatalogSocketType[] {
  const seen = new Set<string>();
  return specs.map((spec) => {
    if (!spec || typeof spec.type !== 'string' || !SOCKET_TYPE_NAME.test(spec.type)) {
      throw new PackageProblem(`its socket type ${JSON.stringify(spec?.type)} needs a name of a capital letter, then letters and digits (at most 32)`);
    }
    const owner = owners.get(spec.type);
    if (owner) throw new PackageProblem(`its socket type "${spec.type}" clashes with ${owner}`);
    if (seen.has(spec.type)) throw new PackageProblem(`it declares the socket type "${spec.type}" twice`);
    seen.add(spec.type);
    if (typeof spec.color !== 'string' || !COLOR.test(spec.color)) {
      throw new PackageProblem(`its socket type "${spec.type}" needs a colour "#rrggbb", got ${JSON.stringify(spec.color)}`);
    }
    return { type: spec.type, color: spec.color, ...(typeof spec.description === 'string' ? { description: spec.description } : {}), package: pkg };
  });
}

/** Which node packages a studio or worker loads: none (`--no-custom-nodes`), or `<data>/custom_nodes/*` and `extra` (`--nodes`). */
export type CustomNodes = false | { extra: readonly string[] };

/** The catalog of the built-in nodes and the node packages `custom` asks for (see loadNodePackages). */
export async function catalogWithPackages(builtins: readonly AnyNodeDefinition[], dataDir: string, custom: CustomNodes, log: Logger) {
  if (!custom) return createCatalog([...builtins]);
  const found = await loadNodePackages(await nodePackageFolders(dataDir, custom.extra), builtins, log);
  return createCatalog([...builtins, ...found.nodes], { socketTypes: found.socketTypes, packages: found.packages });
}

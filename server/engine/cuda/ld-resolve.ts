/**
 * Where the dynamic loader (glibc ld.so) would find each shared library an object needs, found the way
 * ld.so(8) says it searches, so a diagnosis can name the library that is missing before dlopen fails:
 *
 *   1. a name with a slash is a path, used as is;
 *   2. DT_RPATH of the object and of the objects that loaded it, when the object has no DT_RUNPATH;
 *   3. LD_LIBRARY_PATH;
 *   4. DT_RUNPATH of the object (for its own direct dependencies only);
 *   5. /etc/ld.so.cache (read with `ldconfig -p`), unless the object is linked with -z nodefaultlib;
 *   6. the system folders: /lib, /usr/lib and their multiarch and lib64 forms.
 *
 * A candidate file of another class or machine (a 32-bit library in a 64-bit search) is skipped, as the
 * loader skips it. $ORIGIN, $LIB and $PLATFORM are expanded in search paths. A library found once is
 * found by name for every later requester (the loader reuses a loaded object with that SONAME), so a
 * dependency tree is walked breadth first, in the loader's order.
 * Not modelled: glibc-hwcaps subfolders, LD_PRELOAD, and libraries already loaded into the process.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { processElfTarget, readElfDynamic, readElfTarget, type ElfDynamic } from './elf.ts';

export type FoundVia = 'path' | 'rpath' | 'LD_LIBRARY_PATH' | 'runpath' | 'ld.so.cache' | 'system folder';

export interface LoaderEnvironment {
  ldLibraryPath: string[];
  /** ld.so.cache: library name → paths, in the cache's order. Empty when ldconfig could not be run. */
  cache: Map<string, string[]>;
  /** Why the cache is empty, when it is. */
  cacheNote?: string;
  systemDirs: string[];
  target: { bits: 32 | 64; machine: number };
}

const MULTIARCH: Record<string, string> = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu', ia32: 'i386-linux-gnu' };
const PLATFORM: Record<string, string> = { x64: 'x86_64', arm64: 'aarch64', ia32: 'i686' };

/** Parses `ldconfig -p` output: "\tlibz.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libz.so.1". */
export function parseLdconfigCache(text: string): Map<string, string[]> {
  const cache = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^\s+(\S+)\s+\(([^)]*)\)\s+=>\s+(.+?)\s*$/.exec(line);
    if (!m) continue;
    const list = cache.get(m[1]!) ?? [];
    list.push(m[3]!);
    cache.set(m[1]!, list);
  }
  return cache;
}

function readLdconfigCache(): { cache: Map<string, string[]>; note?: string } {
  for (const cmd of ['/sbin/ldconfig', '/usr/sbin/ldconfig', 'ldconfig']) {
    if (cmd.startsWith('/') && !existsSync(cmd)) continue;
    const run = spawnSync(cmd, ['-p'], { encoding: 'utf8', timeout: 10_000, maxBuffer: 32 * 1024 * 1024 });
    if (run.status === 0) return { cache: parseLdconfigCache(run.stdout) };
  }
  return { cache: new Map(), note: 'ldconfig could not be run, so /etc/ld.so.cache was not consulted' };
}

/** The system folders the loader searches last, those that exist. */
function systemLibraryDirs(arch: string = process.arch, exists: (p: string) => boolean = existsSync): string[] {
  const triplet = MULTIARCH[arch];
  const bits64 = arch === 'x64' || arch === 'arm64';
  const dirs = [...(triplet ? [`/lib/${triplet}`, `/usr/lib/${triplet}`] : []), ...(bits64 ? ['/lib64', '/usr/lib64'] : []), '/lib', '/usr/lib'];
  return dirs.filter((d) => exists(d));
}

let cached: LoaderEnvironment | null = null;

/** The loader's environment of this process (ldconfig runs once per process; pass `fresh` to re-read). */
export function loaderEnvironment(opts: { env?: NodeJS.ProcessEnv; fresh?: boolean } = {}): LoaderEnvironment {
  const env = opts.env ?? process.env;
  if (!cached || opts.fresh) {
    const target = processElfTarget() ?? { bits: 64, machine: 62 };
    const { cache, note } = readLdconfigCache();
    cached = { ldLibraryPath: [], cache, ...(note ? { cacheNote: note } : {}), systemDirs: systemLibraryDirs(), target };
  }
  // LD_LIBRARY_PATH: ';' and ':' both separate; an empty entry means the current folder (as for ld.so).
  const text = env.LD_LIBRARY_PATH ?? '';
  const ldLibraryPath = text === '' ? [] : text.split(/[:;]/).map((p) => p || process.cwd());
  return { ...cached, ldLibraryPath };
}

/** Expands $ORIGIN, $LIB and $PLATFORM (also as ${...}) in one search folder of `object`. */
function expandSearchPath(dir: string, object: string, bits: 32 | 64, arch: string = process.arch): string {
  return dir
    .replace(/\$(\{ORIGIN\}|ORIGIN)/g, path.dirname(object))
    .replace(/\$(\{LIB\}|LIB)/g, bits === 64 ? 'lib64' : 'lib')
    .replace(/\$(\{PLATFORM\}|PLATFORM)/g, PLATFORM[arch] ?? arch);
}

/** One object in a load chain: its path and dynamic section. */
export interface LoadedObject {
  path: string;
  dyn: ElfDynamic;
}

export interface Resolution {
  /** The name as written in DT_NEEDED (or asked for with dlopen). */
  name: string;
  /** Absolute path the loader would open, or null when it finds nothing. */
  path: string | null;
  via: FoundVia | null;
  /** The object that needs it. */
  neededBy: string;
}

function isLoadable(file: string, target: { bits: number; machine: number }): boolean {
  try {
    if (!statSync(file).isFile()) return false;
  } catch {
    return false;
  }
  const t = readElfTarget(file);
  return t !== null && t.bits === target.bits && t.machine === target.machine;
}

/**
 * Finds `name` for `requester`, whose loaders are `chain` (nearest first, for DT_RPATH inheritance).
 * With `dlopen`, the name is opened by the requester's code rather than listed in its DT_NEEDED: the
 * same search applies (RPATH, LD_LIBRARY_PATH, RUNPATH, cache, system folders).
 */
export function resolveLibrary(name: string, requester: LoadedObject, env: LoaderEnvironment, chain: LoadedObject[] = []): Resolution {
  const found = (p: string, via: FoundVia): Resolution => ({ name, path: path.resolve(p), via, neededBy: requester.path });
  if (name.includes('/')) return isLoadable(name, env.target) ? found(name, 'path') : { name, path: null, via: null, neededBy: requester.path };
  const tryDirs = (dirs: string[], via: FoundVia, origin: LoadedObject): Resolution | null => {
    for (const d of dirs) {
      const candidate = path.join(expandSearchPath(d, origin.path, origin.dyn.bits), name);
      if (isLoadable(candidate, env.target)) return found(candidate, via);
    }
    return null;
  };
  if (!requester.dyn.runpath) {
    for (const obj of [requester, ...chain]) {
      if (obj.dyn.runpath) break; // an object with RUNPATH ends the RPATH inheritance
      const hit = obj.dyn.rpath && tryDirs(obj.dyn.rpath, 'rpath', obj);
      if (hit) return hit;
    }
  }
  const fromEnv = tryDirs(env.ldLibraryPath, 'LD_LIBRARY_PATH', requester);
  if (fromEnv) return fromEnv;
  const fromRunpath = requester.dyn.runpath && tryDirs(requester.dyn.runpath, 'runpath', requester);
  if (fromRunpath) return fromRunpath;
  if (!requester.dyn.noDefaultLib) {
    for (const p of env.cache.get(name) ?? []) if (isLoadable(p, env.target)) return found(p, 'ld.so.cache');
    const fromSystem = tryDirs(env.systemDirs, 'system folder', requester);
    if (fromSystem) return fromSystem;
  }
  return { name, path: null, via: null, neededBy: requester.path };
}

export interface DependencyTree {
  root: LoadedObject;
  /** Every library in load order (breadth first), each name once: the first requester's resolution. */
  libraries: Resolution[];
  /** Names that are missing, with who needs them. */
  missing: Resolution[];
  /** Found libraries that could not be read as ELF (named with the reason). */
  unreadable: { path: string; reason: string }[];
}

/**
 * Resolves the whole dependency tree of `rootPath` as the loader would when it opens it, plus `dlopened`
 * names the root opens itself at run time (resolved from the root after its DT_NEEDED tree).
 */
export function resolveDependencyTree(rootPath: string, env: LoaderEnvironment = loaderEnvironment(), dlopened: string[] = []): DependencyTree {
  const root: LoadedObject = { path: path.resolve(rootPath), dyn: readElfDynamic(rootPath) };
  const byName = new Map<string, Resolution>();
  const libraries: Resolution[] = [];
  const unreadable: { path: string; reason: string }[] = [];
  if (root.dyn.soname) byName.set(root.dyn.soname, { name: root.dyn.soname, path: root.path, via: 'path', neededBy: root.path });
  const queue: { obj: LoadedObject; chain: LoadedObject[]; names: string[] }[] = [{ obj: root, chain: [], names: root.dyn.needed }];
  const visit = () => {
    while (queue.length > 0) {
      const { obj, chain, names } = queue.shift()!;
      for (const name of names) {
        if (byName.has(name)) continue;
        const r = resolveLibrary(name, obj, env, chain);
        byName.set(name, r);
        libraries.push(r);
        if (!r.path) continue;
        try {
          const dyn = readElfDynamic(r.path);
          if (dyn.soname && !byName.has(dyn.soname)) byName.set(dyn.soname, r);
          queue.push({ obj: { path: r.path, dyn }, chain: [obj, ...chain], names: dyn.needed });
        } catch (e) {
          unreadable.push({ path: r.path, reason: (e as Error).message });
        }
      }
    }
  };
  visit();
  queue.push({ obj: root, chain: [], names: dlopened });
  visit();
  return { root, libraries, missing: libraries.filter((l) => !l.path), unreadable };
}

/**
 * The ELF dynamic-section reader and the loader-order resolver: on synthetic objects (every search rule,
 * in order, on a throwaway tree) and on real libraries of this machine, checked against readelf and ldd.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ElfError, readElfDynamic } from '../server/engine/cuda/elf.ts';
import { loaderEnvironment, parseLdconfigCache, resolveDependencyTree, resolveLibrary, type LoaderEnvironment } from '../server/engine/cuda/ld-resolve.ts';
import { makeElf, type ElfSpec } from './support/elf-fixture.ts';

const root = mkdtempSync(path.join(os.tmpdir(), 'dualstyle-elf-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function lib(rel: string, spec: ElfSpec = {}): string {
  const file = path.join(root, rel);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, makeElf(spec));
  return file;
}

function env(over: Partial<LoaderEnvironment> = {}): LoaderEnvironment {
  return { ldLibraryPath: [], cache: new Map(), systemDirs: [], target: { bits: 64, machine: 62 }, ...over };
}

const object = (file: string) => ({ path: file, dyn: readElfDynamic(file) });

describe('readElfDynamic', () => {
  it('reads NEEDED, SONAME, RPATH, RUNPATH and NODEFLIB through the program headers', () => {
    const f = lib('read/libx.so', { needed: ['liba.so.1', 'libb.so.2'], soname: 'libx.so.1', rpath: '/r1:/r2', runpath: '$ORIGIN/../lib', nodeflib: true });
    const d = readElfDynamic(f);
    expect(d).toMatchObject({
      bits: 64,
      littleEndian: true,
      machine: 62,
      needed: ['liba.so.1', 'libb.so.2'],
      soname: 'libx.so.1',
      rpath: ['/r1', '/r2'],
      runpath: ['$ORIGIN/../lib'],
      noDefaultLib: true,
    });
    const plain = readElfDynamic(lib('read/libplain.so', { needed: ['libc.so.6'] }));
    expect(plain).toMatchObject({ soname: null, rpath: null, runpath: null, noDefaultLib: false });
  });

  it('refuses what is not ELF, or ELF cut short, with the file named', () => {
    const text = path.join(root, 'read/not-elf.so');
    writeFileSync(text, 'INPUT(-lc)\n'); // a linker script named .so, as /usr/lib has some
    expect(() => readElfDynamic(text)).toThrow(ElfError);
    expect(() => readElfDynamic(text)).toThrow(/not-elf\.so: not an ELF file/);
    const cut = path.join(root, 'read/cut.so');
    writeFileSync(cut, makeElf({ needed: ['liba.so'] }).subarray(0, 120));
    expect(() => readElfDynamic(cut)).toThrow(/cut\.so: truncated/);
  });
});

describe('resolveLibrary follows the loader order', () => {
  // Every folder holds a libdep.so.1; each test removes the winner from consideration to reach the next rule.
  const dirs = ['rpath', 'ldlib', 'runpath', 'cache', 'system'].map((d) => path.join(root, 'order', d));
  for (const d of dirs) lib(path.relative(root, path.join(d, 'libdep.so.1')), { soname: 'libdep.so.1' });
  const [rpathDir, ldDir, runDir, cacheDir, sysDir] = dirs as [string, string, string, string, string];
  const full = env({ ldLibraryPath: [ldDir], cache: new Map([['libdep.so.1', [path.join(cacheDir, 'libdep.so.1')]]]), systemDirs: [sysDir] });

  it('RPATH (without RUNPATH) → LD_LIBRARY_PATH → RUNPATH → ld.so.cache → system folders', () => {
    const withRpath = object(lib('order/a/librpath.so', { needed: ['libdep.so.1'], rpath: rpathDir }));
    expect(resolveLibrary('libdep.so.1', withRpath, full)).toMatchObject({ via: 'rpath', path: path.join(rpathDir, 'libdep.so.1') });
    const withRunpath = object(lib('order/a/librunpath.so', { needed: ['libdep.so.1'], runpath: runDir }));
    expect(resolveLibrary('libdep.so.1', withRunpath, full)).toMatchObject({ via: 'LD_LIBRARY_PATH', path: path.join(ldDir, 'libdep.so.1') });
    expect(resolveLibrary('libdep.so.1', withRunpath, { ...full, ldLibraryPath: [] })).toMatchObject({
      via: 'runpath',
      path: path.join(runDir, 'libdep.so.1'),
    });
    const bare = object(lib('order/a/libbare.so', { needed: ['libdep.so.1'] }));
    expect(resolveLibrary('libdep.so.1', bare, { ...full, ldLibraryPath: [] })).toMatchObject({ via: 'ld.so.cache' });
    expect(resolveLibrary('libdep.so.1', bare, { ...full, ldLibraryPath: [], cache: new Map() })).toMatchObject({
      via: 'system folder',
      path: path.join(sysDir, 'libdep.so.1'),
    });
    expect(resolveLibrary('libdep.so.1', bare, env())).toMatchObject({ via: null, path: null });
  });

  it('ignores RPATH when the object has RUNPATH, and NODEFLIB skips the cache and system folders', () => {
    const both = object(lib('order/b/libboth.so', { needed: ['libdep.so.1'], rpath: rpathDir, runpath: runDir }));
    expect(resolveLibrary('libdep.so.1', both, { ...full, ldLibraryPath: [] })).toMatchObject({ via: 'runpath' });
    const nodef = object(lib('order/b/libnodef.so', { needed: ['libdep.so.1'], nodeflib: true }));
    expect(resolveLibrary('libdep.so.1', nodef, { ...full, ldLibraryPath: [] }).path).toBeNull();
  });

  it('inherits RPATH from the loading chain, but not RUNPATH', () => {
    const parentR = object(lib('order/c/libparent-r.so', { rpath: rpathDir }));
    const parentRun = object(lib('order/c/libparent-run.so', { runpath: runDir }));
    const child = object(lib('order/c/libchild.so', { needed: ['libdep.so.1'] }));
    const bareEnv = env();
    expect(resolveLibrary('libdep.so.1', child, bareEnv, [parentR])).toMatchObject({ via: 'rpath' });
    expect(resolveLibrary('libdep.so.1', child, bareEnv, [parentRun]).path).toBeNull();
  });

  it("reads LD_LIBRARY_PATH as ld.so does: ':' or ';' between folders, an empty entry is the current folder", () => {
    expect(loaderEnvironment({ env: {} }).ldLibraryPath).toEqual([]);
    expect(loaderEnvironment({ env: { LD_LIBRARY_PATH: '/a;/b:/c' } }).ldLibraryPath).toEqual(['/a', '/b', '/c']);
    expect(loaderEnvironment({ env: { LD_LIBRARY_PATH: '/a::/b:' } }).ldLibraryPath).toEqual(['/a', process.cwd(), '/b', process.cwd()]);
  });

  it('expands $ORIGIN and skips files of another machine', () => {
    lib('order/d/lib/libdep.so.1', { soname: 'libdep.so.1', machine: 183 }); // AArch64: not loadable here
    lib('order/d/lib64/libdep.so.1', { soname: 'libdep.so.1' });
    const o = object(lib('order/d/bin/libo.so', { needed: ['libdep.so.1'], runpath: '$ORIGIN/../lib:${ORIGIN}/../lib64' }));
    expect(resolveLibrary('libdep.so.1', o, env())).toMatchObject({ via: 'runpath', path: path.join(root, 'order/d/lib64/libdep.so.1') });
  });
});

describe('resolveDependencyTree', () => {
  it('walks breadth first; each dependency searched with its own RUNPATH; a name found once is reused', () => {
    // top needs libmid (beside it) and libleaf; libmid finds libleaf through its own $ORIGIN/leaf RUNPATH.
    lib('tree/leaf/libleaf.so.1', { soname: 'libleaf.so.1' });
    lib('tree/libmid.so.1', { soname: 'libmid.so.1', needed: ['libleaf.so.1'], runpath: '$ORIGIN/leaf' });
    const top = lib('tree/libtop.so', { needed: ['libmid.so.1', 'libleaf.so.1'], runpath: '$ORIGIN' });
    const t = resolveDependencyTree(top, env(), ['libdlopened.so.9']);
    // libleaf is a direct need of top, searched from top (whose RUNPATH does not reach leaf/): missing,
    // even though libmid's RUNPATH would have found it; the loader fails the same way.
    expect(t.libraries.map((l) => [l.name, l.via])).toEqual([
      ['libmid.so.1', 'runpath'],
      ['libleaf.so.1', null],
      ['libdlopened.so.9', null],
    ]);
    expect(t.missing.map((m) => m.name)).toEqual(['libleaf.so.1', 'libdlopened.so.9']);
    const fine = lib('tree/libtop2.so', { needed: ['libmid.so.1'], runpath: '$ORIGIN' });
    const t2 = resolveDependencyTree(fine, env());
    expect(t2.missing).toEqual([]);
    expect(t2.libraries.find((l) => l.name === 'libleaf.so.1')).toMatchObject({ via: 'runpath', neededBy: path.join(root, 'tree/libmid.so.1') });
  });

  it('parses ldconfig -p lines', () => {
    const cache = parseLdconfigCache(
      "2 libs found in cache `/etc/ld.so.cache'\n\tlibz.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libz.so.1\n\tlibz.so.1 (libc6) => /usr/lib32/libz.so.1\n",
    );
    expect(cache.get('libz.so.1')).toEqual(['/lib/x86_64-linux-gnu/libz.so.1', '/usr/lib32/libz.so.1']);
  });
});

// Real libraries of this machine, against readelf and ldd (Linux with binutils and glibc's ldd).
const ortBin = path.resolve(import.meta.dirname, '../node_modules/onnxruntime-node/bin/napi-v6/linux/x64');
const real = [
  path.join(ortBin, 'libonnxruntime.so.1'),
  path.join(ortBin, 'libonnxruntime_providers_cuda.so'),
  path.join(ortBin, 'onnxruntime_binding.node'),
].filter((f) => existsSync(f));
const hasTools = process.platform === 'linux' && spawnSync('readelf', ['--version']).status === 0 && spawnSync('ldd', ['--version']).status === 0;

describe.skipIf(!hasTools || real.length === 0)('on real shared objects (onnxruntime-node, and the CUDA provider once installed)', () => {
  it.each(real)('%s: NEEDED, SONAME and RUNPATH as readelf reads them', (file) => {
    const out = spawnSync('readelf', ['-d', '-W', file], { encoding: 'utf8' }).stdout;
    const grab = (kind: string) => [...out.matchAll(new RegExp(`\\(${kind}\\)\\s+[^\\[]*\\[([^\\]]*)\\]`, 'g'))].map((m) => m[1]);
    const d = readElfDynamic(file);
    expect(d.needed).toEqual(grab('NEEDED'));
    expect(d.soname ?? undefined).toEqual(grab('SONAME')[0]);
    expect(d.runpath?.join(':')).toEqual(grab('RUNPATH')[0]);
  });

  it.each(real)('%s: every dependency resolved to the path ldd prints, or missing where ldd says not found', (file) => {
    const out = spawnSync('ldd', [file], { encoding: 'utf8', env: process.env }).stdout;
    const ldd = new Map<string, string | null>();
    for (const m of out.matchAll(/^\s+(\S+) => (not found|\S+)/gm)) ldd.set(m[1]!, m[2] === 'not found' ? null : m[2]!);
    const tree = resolveDependencyTree(file, loaderEnvironment());
    expect(ldd.size).toBeGreaterThan(0);
    for (const [name, p] of ldd) {
      const r = tree.libraries.find((l) => l.name === name);
      expect(r, name).toBeDefined();
      expect(r!.path, name).toBe(p);
    }
  });
});

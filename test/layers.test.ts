/**
 * Imports flow one way. Each source file belongs to a floor; a file may import from its own floor or
 * the floors below, never from above. The floors, bottom up:
 *
 *   0  server/protocol, server/util        shared types and tiny helpers (the client may import protocol)
 *   1  server/engine/{values,errors}.ts    the engine's vocabulary
 *   2  server/engine/diffusion             the paper's math, behind the Denoiser port
 *   2  server/engine/metrics               the evaluation math (pixel metrics, SSIM, CLIP scores and
 *                                          preprocessing, LPIPS), behind ClipEncoder / PerceptualDistance
 *                                          ports; their sessions live in evaluation-models/
 *   2  server/engine/images                CHW images ↔ RGB bytes and PNG, resizing, the built-in sample picture
 *   3  server/engine/attention             the attention-merge graph rewrite and its cache
 *   4  server/engine/optimizer             the load-time graph optimizer (fusions, fp16 conversion)
 *   3  server/engine/text                  the CLIP tokenizer
 *   3  server/engine/cuda                  why CUDA works or not: the provider, its ELF dependencies, the loader
 *   4  server/engine/runtime               onnxruntime: tensors, sessions on their thread, the model registry
 *   5  server/engine/sd                    the SD 1.x pipeline (a Denoiser), its folder, sizes and memory
 *   6  server/engine/evaluation-models     the CLIP and LPIPS models the metrics run on
 *   7  server/models                       model tooling: Hub download, demo-model generator, the models
 *                                          folders and the list of models a user can pick
 *   7  server/services                     what the server hands the nodes (Services) and the loaded
 *                                          models by kind (LoadedModels)
 *   8  nodes                               the node catalog
 *   9  server/catalog.ts, graph, store     catalog JSON, graph validation, files on disk
 *   9  server/node-packages                custom nodes: the node packages loaded at start
 *  10  server/executor                     running graphs, the job queue, previews
 *  11  server/http, server/app.ts          the HTTP and socket API
 *  12  server/cli, main.ts, bench, conformance, eval   entry points and tools
 *
 * client/src may import client/src and server/protocol only.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');

const FLOORS: [prefix: string, floor: number][] = [
  ['server/protocol/', 0],
  ['server/util/', 0],
  ['server/engine/values.ts', 1],
  ['server/engine/errors.ts', 1],
  ['server/engine/diffusion/', 2],
  ['server/engine/metrics/', 2],
  ['server/engine/images/', 2],
  ['server/engine/attention/', 3],
  ['server/engine/optimizer/', 4],
  ['server/engine/text/', 3],
  ['server/engine/cuda/', 3],
  ['server/engine/runtime/', 4],
  ['server/engine/sd/', 5],
  ['server/engine/evaluation-models/', 6],
  ['server/models/', 7],
  ['server/services/', 7],
  ['nodes/', 8],
  ['server/catalog.ts', 9],
  ['server/graph/', 9],
  ['server/store/', 9],
  ['server/node-packages/', 9],
  ['server/executor/', 10],
  ['server/http/', 11],
  ['server/app.ts', 11],
  ['server/cli/', 12],
  ['server/main.ts', 12],
  ['server/bench/', 12],
  ['server/conformance/', 12],
  ['server/eval/', 12],
];

/** The floor of a file (relative path, '/'-separated); undefined for files outside the layered tree. */
export function floorOf(rel: string): number | undefined {
  let best: [string, number] | undefined;
  for (const entry of FLOORS) if (rel.startsWith(entry[0]) && (!best || entry[0].length > best[0].length)) best = entry;
  return best?.[1];
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\b[^;'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g;

/** Relative import specifiers of a source text (package imports are not ours). */
export function importsOf(source: string): string[] {
  const out: string[] = [];
  for (const m of source.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (spec?.startsWith('.')) out.push(spec);
  }
  return out;
}

/**
 * Imports the floors would allow but the design does not: the HTTP routes speak to the executor and the
 * stores, never to a node module (what they need of a node lives below the nodes, or comes through the
 * services); server/app.ts, the composition root, hands the catalog in.
 */
const FORBIDDEN: [from: string, to: string, why: string][] = [['server/http/', 'nodes/', 'the HTTP routes may not reach into the node catalog']];

/** Modules that hold model registries: a node loads models through ctx.services.models, never through these. */
const REGISTRY_MODULES = [
  'server/engine/runtime/registry.ts',
  'server/engine/sd/pipelines.ts',
  'server/engine/evaluation-models/clip-model.ts',
  'server/engine/evaluation-models/lpips-model.ts',
  'server/services/loaded-models.ts',
];

const VALUE_IMPORT = /(?:^|\n)\s*(?:import|export)\s+(?!type\b)[^;'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

/**
 * Where models could be loaded past the services: a node importing a registry module for more than its
 * types, or any file keeping a registry in a module-level variable (a process-wide singleton).
 */
export function findRegistryReaches(files: Map<string, string>): string[] {
  const bad: string[] = [];
  for (const [rel, source] of files) {
    if (/(?:^|\n)(?:export\s+)?(?:const|let|var)\s+\w+\s*=\s*new\s+\w*Registry\b/.test(source)) {
      bad.push(`${rel} keeps a model registry at module level (a process-wide singleton: put it in LoadedModels)`);
    }
    if (!rel.startsWith('nodes/')) continue;
    for (const m of source.matchAll(VALUE_IMPORT)) {
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(rel), m[1] ?? m[2] ?? ''));
      if (REGISTRY_MODULES.includes(target)) bad.push(`${rel} → ${target} (nodes load models through ctx.services.models)`);
    }
  }
  return bad.sort();
}

/** Every import that goes up a floor, or out of the client's bounds: "from → to". */
export function findViolations(files: Map<string, string>): string[] {
  const bad: string[] = [];
  for (const [rel, source] of files) {
    for (const spec of importsOf(source)) {
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(rel), spec));
      if (rel.startsWith('client/')) {
        if (!target.startsWith('client/') && !target.startsWith('server/protocol/'))
          bad.push(`${rel} → ${target} (the client may import only client/ and server/protocol/)`);
        continue;
      }
      const from = floorOf(rel);
      const to = floorOf(target);
      if (from === undefined) continue;
      if (to === undefined) bad.push(`${rel} → ${target} (outside the layered tree)`);
      else if (to > from) bad.push(`${rel} (floor ${from}) → ${target} (floor ${to})`);
      for (const [fromPrefix, toPrefix, why] of FORBIDDEN) {
        if (rel.startsWith(fromPrefix) && target.startsWith(toPrefix)) bad.push(`${rel} → ${target} (${why})`);
      }
    }
  }
  return bad.sort();
}

/** Import cycles between files (type-only imports count: they couple the files as much), each as its path. */
export function findCycles(files: Map<string, string>): string[] {
  const edges = new Map<string, string[]>();
  for (const [rel, source] of files) {
    const targets = importsOf(source)
      .map((spec) => path.posix.normalize(path.posix.join(path.posix.dirname(rel), spec)).replace(/\.js$/, '.ts'))
      .filter((t) => files.has(t));
    edges.set(rel, targets);
  }
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string) => {
    state.set(f, 'open');
    stack.push(f);
    for (const t of edges.get(f) ?? []) {
      if (state.get(t) === 'open') cycles.push([...stack.slice(stack.indexOf(t)), t].join(' → '));
      else if (!state.has(t)) visit(t);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of [...files.keys()].sort()) if (!state.has(f)) visit(f);
  return cycles;
}

function sourceTree(): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (dir: string) => {
    for (const e of readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = `${dir}/${e.name}`;
      if (e.isDirectory()) walk(rel);
      else if (/\.tsx?$/.test(e.name)) files.set(rel, readFileSync(path.join(root, rel), 'utf8'));
    }
  };
  for (const dir of ['server', 'nodes', 'client/src']) walk(dir);
  return files;
}

describe('import direction', () => {
  const files = sourceTree();

  it('every server and node file has a floor', () => {
    const unplaced = [...files.keys()].filter((f) => !f.startsWith('client/') && floorOf(f) === undefined);
    expect(unplaced).toEqual([]);
  });

  it('no file imports from a floor above its own', () => {
    expect(files.size).toBeGreaterThan(50);
    expect(findViolations(files)).toEqual([]);
  });

  it('catches a backward import (the engine reaching up into nodes, the client into the engine)', () => {
    const tampered = new Map(files);
    const cycle = 'server/engine/diffusion/cycle.ts';
    tampered.set(cycle, `${files.get(cycle)}\nimport type { ModelValue } from '../../../nodes/values.ts';\n`);
    tampered.set('client/src/extra.ts', "export { decode } from '../../server/engine/diffusion/cycle.ts';\n");
    expect(findViolations(tampered)).toEqual([
      'client/src/extra.ts → server/engine/diffusion/cycle.ts (the client may import only client/ and server/protocol/)',
      'server/engine/diffusion/cycle.ts (floor 2) → nodes/values.ts (floor 8)',
    ]);
  });

  it('the HTTP routes import nothing from the nodes', () => {
    const tampered = new Map(files);
    tampered.set('server/http/extra.ts', "import { listModels } from '../../nodes/load-model.ts';\n");
    expect(findViolations(tampered)).toEqual(['server/http/extra.ts → nodes/load-model.ts (the HTTP routes may not reach into the node catalog)']);
  });

  it('nodes load models through the services, and no registry is a process-wide singleton', () => {
    expect(findRegistryReaches(files)).toEqual([]);
    const tampered = new Map(files);
    tampered.set(
      'nodes/extra.ts',
      "import { PipelineRegistry } from '../server/engine/sd/pipelines.ts';\nimport type { ClipHandle } from '../server/engine/evaluation-models/clip-model.ts';\n",
    );
    tampered.set('server/engine/sd/extra.ts', 'export const pipelines = new PipelineRegistry();\n');
    expect(findRegistryReaches(tampered)).toEqual([
      'nodes/extra.ts → server/engine/sd/pipelines.ts (nodes load models through ctx.services.models)',
      'server/engine/sd/extra.ts keeps a model registry at module level (a process-wide singleton: put it in LoadedModels)',
    ]);
  });

  it('no file reaches itself through its imports (type-only imports included)', () => {
    expect(findCycles(files)).toEqual([]);
  });

  it('finds a cycle made of type-only imports', () => {
    const tiny = new Map([
      ['nodes/a.ts', "import type { B } from './b.ts';\n"],
      ['nodes/b.ts', "import type { C } from './c.ts';\n"],
      ['nodes/c.ts', "import type { A } from './a.ts';\n"],
    ]);
    expect(findCycles(tiny)).toEqual(['nodes/a.ts → nodes/b.ts → nodes/c.ts → nodes/a.ts']);
  });

  it('reads every form of import', () => {
    expect(
      importsOf(
        `import a from './a.ts';\nimport type { B } from "../b.ts";\nexport { c } from './c.ts';\nimport './d.css';\nconst e = await import('./e.ts');\nimport x from 'zod';`,
      ),
    ).toEqual(['./a.ts', '../b.ts', './c.ts', './d.css', './e.ts']);
  });
});

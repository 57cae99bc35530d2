/**
 * Imports flow one way. Each source file belongs to a floor; a file may import from its own floor or
 * the floors below, never from above. The floors, bottom up:
 *
 *   0  server/protocol, server/util        shared types and tiny helpers (the client may import protocol)
 *   1  server/engine/{values,errors}.ts    the engine's vocabulary
 *   2  server/engine/diffusion             the paper's math, behind the Denoiser port
 *   2  server/engine/metrics               the evaluation math (pixel metrics, SSIM, CLIP scores and
 *                                          preprocessing, LPIPS), behind ClipEncoder / PerceptualDistance
 *                                          ports; its sessions live in onnx/ beside the SD pipeline's
 *   3  server/engine/attention             the attention-merge graph rewrite and its cache
 *   4  server/engine/onnx                  sessions, the SD pipeline (a Denoiser), tokenizer, registry
 *   5  server/models                       model tooling: Hub download, demo-model generator
 *   6  nodes                               the node catalog
 *   7  server/catalog.ts, graph, store     catalog JSON, graph validation, files on disk
 *   8  server/executor                     running graphs, the job queue, previews
 *   9  server/http, server/app.ts          the HTTP and socket API
 *  10  server/cli, main.ts, bench, conformance, eval   entry points and tools
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
  ['server/engine/attention/', 3],
  ['server/engine/onnx/', 4],
  ['server/models/', 5],
  ['nodes/', 6],
  ['server/catalog.ts', 7],
  ['server/graph/', 7],
  ['server/store/', 7],
  ['server/executor/', 8],
  ['server/http/', 9],
  ['server/app.ts', 9],
  ['server/cli/', 10],
  ['server/main.ts', 10],
  ['server/bench/', 10],
  ['server/conformance/', 10],
  ['server/eval/', 10],
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
    }
  }
  return bad.sort();
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
      'server/engine/diffusion/cycle.ts (floor 2) → nodes/values.ts (floor 6)',
    ]);
  });

  it('reads every form of import', () => {
    expect(
      importsOf(
        `import a from './a.ts';\nimport type { B } from "../b.ts";\nexport { c } from './c.ts';\nimport './d.css';\nconst e = await import('./e.ts');\nimport x from 'zod';`,
      ),
    ).toEqual(['./a.ts', '../b.ts', './c.ts', './d.css', './e.ts']);
  });
});

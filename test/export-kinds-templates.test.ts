/**
 * Every shipped template, end to end, on every export kind the CPU provider runs, at a non-square size:
 * Load Image fits the built-in sample to what the model's UNet takes (80×56, a 10×7 latent, where the up
 * path follows the skips; 64×32 where it doubles by a constant factor). And what happens when Load Image
 * is not connected to the model: VAE Encode refuses the size before any UNet call, naming the nearest.
 */
import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeFailedError } from '../server/executor/executor.ts';
import type { Graph } from '../server/protocol/graph.ts';
import { EXPORT_KINDS, writeKind, type ExportKind } from './support/export-kinds.ts';
import { loadTemplate, projectRoot, Runner, shrink, withParams } from './support/pipeline-harness.ts';

const templates = readdirSync(path.join(projectRoot, 'graphs'))
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.slice(0, -5));
const kinds = EXPORT_KINDS.filter((k) => k.cpu);
const takesAnySize = (k: ExportKind) => k.options.upsample !== 'scale';

let root: string;
const dirs = new Map<string, string>();
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'dss-kinds-templates-'));
  for (const kind of kinds) dirs.set(kind.name, await writeKind(root, kind));
});
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

/** The template on a kind's folder, small: the sample at max side 80, 3 steps (skip 1). */
async function small(name: string, dir: string): Promise<Graph> {
  return withParams(shrink(await loadTemplate(name), dir, 3, 1), { LoadImage: { max_side: 80 } });
}

describe.each(kinds.map((k) => [k.name, k] as const))('templates on the %s export', (_name, kind) => {
  let runner: Runner;
  beforeAll(async () => {
    runner = await Runner.create();
  });

  it.each(templates)('%s runs end to end at a non-square size', async (name) => {
    const summary = await runner.run(await small(name, dirs.get(kind.name)!));
    const images = Object.entries(summary.results).flatMap(([id, r]) => (id.startsWith('save_') ? (r.images ?? []) : []));
    expect(images.length).toBeGreaterThan(0);
    const [w, h] = takesAnySize(kind) ? [80, 56] : [64, 32];
    for (const img of images) expect([img.width, img.height]).toEqual([w, h]);
  });
});

describe('Load Image without the model connected', () => {
  it('VAE Encode refuses a size the UNet does not take, naming the nearest, before any UNet call', async () => {
    const kind = kinds.find((k) => !takesAnySize(k))!;
    const g = await small('epsilon-merge', dirs.get(kind.name)!);
    g.edges = g.edges.filter((e) => !(e.to.node === 'image' && e.to.input === 'model'));
    const runner = await Runner.create();
    const err = await runner.run(g).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NodeFailedError);
    expect((err as NodeFailedError).nodeId).toBe('vae_encode');
    // Multiples of 8 without the model: 80×56, a 10×7 latent; this export takes latent sides that are multiples of 4.
    expect((err as NodeFailedError).detail).toMatch(
      /^this UNet does not take a 80×56 image \(a 10×7 latent\): it takes image sides that are multiples of 32 .*Nearest sizes it takes: 64×64, 96×64, 64×32 or 96×32\. Connect the model to Load Image's "model" input/,
    );
    expect(runner.eventsOf('node:progress', 'invert')).toEqual([]);
  });

  it('fits to multiples of 8, which every SD VAE takes', async () => {
    const kind = kinds.find(takesAnySize)!;
    const g = await small('single-prompt', dirs.get(kind.name)!);
    g.edges = g.edges.filter((e) => !(e.to.node === 'image' && e.to.input === 'model'));
    const summary = await (await Runner.create()).run(g);
    expect(summary.results['save_single']!.images![0]).toMatchObject({ width: 80, height: 56 });
  });
});

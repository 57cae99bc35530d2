/**
 * A runner gives back every kind of loaded model — SD pipelines, CLIP and LPIPS — after a job that left
 * the process above its limit and after a quiet period; the nodes load them through the runner's
 * services (ctx.services.models), so the runner knows them all. The models here are stand-ins that
 * record their release; the registries, the runner and its release rules are the real ones.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineNode } from '../nodes/types.ts';
import { createCatalog } from '../server/catalog.ts';
import { ClipRegistry, type ClipModel } from '../server/engine/evaluation-models/clip-model.ts';
import { LpipsRegistry, type LpipsModel } from '../server/engine/evaluation-models/lpips-model.ts';
import type { SdPipeline } from '../server/engine/sd/pipeline.ts';
import { PipelineRegistry } from '../server/engine/sd/pipelines.ts';
import { GraphRunner, type ModelRelease } from '../server/executor/graph-runner.ts';
import { LoadedModels } from '../server/services/loaded-models.ts';
import { graphJson } from './support/test-nodes.ts';

/** A loaded model of some kind that knows whether it was released. */
class StandIn {
  released = false;
  constructor(readonly kind: string) {}
  async release(): Promise<void> {
    this.released = true;
  }
}

function standInModels(loaded: StandIn[]): LoadedModels {
  const loader =
    <T>(kind: string) =>
    async () => {
      const m = new StandIn(kind);
      loaded.push(m);
      return m as unknown as T;
    };
  return new LoadedModels(
    new PipelineRegistry(2, loader<SdPipeline>('sd')),
    new ClipRegistry(2, loader<ClipModel>('clip')),
    new LpipsRegistry(2, loader<LpipsModel>('lpips')),
  );
}

/** An output node that loads one model of every kind through its services, as Load Model, Load CLIP and Metrics do. */
const LoadsEveryKind = defineNode({
  type: 'LoadsEveryKind',
  title: 'Loads every kind',
  category: 'test',
  description: 'Acquires an SD pipeline, a CLIP and an LPIPS model.',
  inputs: {},
  outputs: {},
  params: z.object({}),
  output: true,
  async run({ ctx }) {
    const { models, executionProvider } = ctx.services;
    await models.pipelines.acquire('/models/sd', executionProvider, 'sd');
    await models.clip.acquire('/models/clip', executionProvider, 'clip');
    await models.lpips.acquire('/models/lpips', executionProvider, 'lpips');
    return { outputs: {}, result: { text: 'loaded' } };
  },
});

const graph = graphJson([{ id: 'load', type: 'LoadsEveryKind' }], []);

describe('model release', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'dualstyle-release-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('after a job above the memory limit, releases the SD, CLIP and LPIPS models alike', async () => {
    const loaded: StandIn[] = [];
    const models = standInModels(loaded);
    const runner = new GraphRunner({ catalog: createCatalog([LoadsEveryKind]), dataDir, executionProvider: 'cpu', models, releaseModelsAboveBytes: 0 });
    const releases: ModelRelease[] = [];
    runner.onRelease((e) => releases.push(e));
    await runner.run(graph);
    expect(loaded.map((m) => m.kind).sort()).toEqual(['clip', 'lpips', 'sd']);
    expect(loaded.filter((m) => !m.released).map((m) => m.kind)).toEqual([]);
    expect(models.size).toBe(0);
    expect(releases.map((r) => [r.why, r.released])).toEqual([['memory', 3]]);
    runner.close();
  });

  it('after a quiet period, releases every kind too', async () => {
    const loaded: StandIn[] = [];
    const models = standInModels(loaded);
    const runner = new GraphRunner({
      catalog: createCatalog([LoadsEveryKind]),
      dataDir,
      executionProvider: 'cpu',
      models,
      releaseModelsAboveBytes: Number.MAX_SAFE_INTEGER,
      releaseIdleMs: 1,
    });
    const idle = new Promise<ModelRelease>((resolve) => runner.onRelease((e) => e.why === 'idle' && resolve(e)));
    await runner.run(graph);
    expect(models.size).toBe(3);
    expect((await idle).released).toBe(3);
    expect(loaded.every((m) => m.released)).toBe(true);
    runner.close();
  });

  it('a runner without models of its own gets its own, not a process-wide set', () => {
    const a = new GraphRunner({ catalog: createCatalog([LoadsEveryKind]), dataDir, executionProvider: 'cpu' });
    const b = new GraphRunner({ catalog: createCatalog([LoadsEveryKind]), dataDir, executionProvider: 'cpu' });
    expect(a.services.models).not.toBe(b.services.models);
  });
});

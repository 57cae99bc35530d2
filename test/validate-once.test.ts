/**
 * A run is validated once and its modes resolved once. The editor asks /api/validate?requireOutput=1
 * before it submits, then POST /api/jobs, then the runner runs the job: the first check validates, the
 * server's runner remembers the graph that passed (by content), and the submission and the run find it
 * there. executeGraph resolves bypass and mute once for its plan and its wiring. validateGraph and
 * resolveModes are counted by wrapping the real functions.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Studio } from '../server/app.ts';
import { api, EventLog, slowGraph, startTestStudio, tempDir } from './support/api-harness.ts';

const counts = vi.hoisted(() => ({ validateGraph: 0, resolveModes: 0 }));

vi.mock('../server/graph/validate.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../server/graph/validate.ts')>();
  return {
    ...real,
    validateGraph: (...args: Parameters<typeof real.validateGraph>) => {
      counts.validateGraph++;
      return real.validateGraph(...args);
    },
  };
});

vi.mock('../server/graph/modes.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../server/graph/modes.ts')>();
  return {
    ...real,
    resolveModes: ((...args: Parameters<typeof real.resolveModes>) => {
      counts.resolveModes++;
      return real.resolveModes(...args);
    }) as typeof real.resolveModes,
  };
});

const { createCatalog } = await import('../server/catalog.ts');
const { GraphRunner } = await import('../server/executor/graph-runner.ts');
const { OutputCache } = await import('../server/executor/cache.ts');
const { executeGraph } = await import('../server/executor/executor.ts');
const { testNodes } = await import('./support/test-nodes.ts');

let dataDir: string;
let studio: Studio;
let events: EventLog;

beforeAll(async () => {
  dataDir = await tempDir('validate-once');
  studio = await startTestStudio(dataDir);
  events = await EventLog.connect(studio);
});

afterAll(async () => {
  events?.close();
  await studio?.close();
});

describe('one validation per run', () => {
  it('the editor’s run (check, submit, run) validates the graph once', async () => {
    const graph = slowGraph(3, 2, 1, 'as the editor runs it');
    counts.validateGraph = 0;
    const check = await api(studio, 'POST', '/api/validate?requireOutput=1', { graph });
    expect(check.body).toEqual({ ok: true, issues: [], warnings: [] });
    const submitted = await api(studio, 'POST', '/api/jobs', { graph });
    expect(submitted.status).toBe(202);
    expect((await events.waitForEnd(submitted.body.job.id as string)).name).toBe('job:done');
    expect(counts.validateGraph).toBe(1);
  });

  it('a job submitted over the API alone is validated once, at the submission', async () => {
    const graph = slowGraph(2, 2, 1, 'validated once');
    counts.validateGraph = 0;
    const submitted = await api(studio, 'POST', '/api/jobs', { graph });
    expect(submitted.status).toBe(202);
    expect((await events.waitForEnd(submitted.body.job.id as string)).name).toBe('job:done');
    expect(counts.validateGraph).toBe(1);
  });

  it('a graph that fails is refused at the submission with every problem, and nothing runs', async () => {
    const graph = slowGraph(2, 2, 1, 'broken');
    graph.edges = [];
    counts.validateGraph = 0;
    const refused = await api(studio, 'POST', '/api/jobs', { graph });
    expect(refused.status).toBe(400);
    expect(refused.body.error.issues.length).toBeGreaterThan(0);
    expect(counts.validateGraph).toBe(1);
  });

  it('a runner validates a graph it has not seen, and only once however often it runs', async () => {
    const runner = new GraphRunner({ catalog: createCatalog(testNodes), dataDir, executionProvider: 'cpu' });
    const graph = slowGraph(5, 1, 0, 'twice');
    counts.validateGraph = 0;
    await runner.run(graph);
    await runner.run(structuredClone(graph));
    expect(counts.validateGraph).toBe(1);
    // Other content is validated anew.
    await runner.run(slowGraph(6, 1, 0, 'other'));
    expect(counts.validateGraph).toBe(2);
    runner.close();
  });
});

describe('modes resolved once', () => {
  it('executeGraph resolves bypass and mute once', async () => {
    const runner = new GraphRunner({ catalog: createCatalog(testNodes), dataDir, executionProvider: 'cpu' });
    const graph = runner.validate(slowGraph(7, 1, 0, 'modes'));
    counts.resolveModes = 0;
    await executeGraph({
      jobId: 'modes',
      graph,
      catalog: runner.catalog,
      services: runner.services,
      cache: new OutputCache({ maxBytes: 1 << 20 }),
      saveResult: async (prefix) => ({ name: `${prefix}.png`, url: `/api/results/${prefix}.png` }),
      signal: new AbortController().signal,
      emit: () => undefined,
    });
    expect(counts.resolveModes).toBe(1);
    runner.close();
  });
});

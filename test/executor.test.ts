import { beforeEach, describe, expect, it } from 'vitest';
import { createCatalog } from '../server/catalog.ts';
import { validateGraph } from '../server/graph/validate.ts';
import { OutputCache } from '../server/executor/cache.ts';
import { executeGraph, NodeFailedError, planRun, type ExecEvent, type ExecuteOptions } from '../server/executor/executor.ts';
import { canonicalJson, contentKey } from '../server/executor/keys.ts';
import { CancelledError } from '../server/engine/errors.ts';
import type { Services } from '../server/services/services.ts';
import { LoadedModels } from '../server/services/loaded-models.ts';
import type { Graph } from '../server/protocol/graph.ts';
import { fingerprint, graphJson, runLog, testNodes } from './support/test-nodes.ts';
import type { ResultSink } from '../server/store/results.ts';

const catalog = createCatalog(testNodes);
const services: Services = {
  dataDir: '/tmp/dualstyle-test',
  executionProvider: 'cpu',
  modelRoots: [],
  readUpload: async () => null,
  models: new LoadedModels(),
};
/** Result files kept in memory: name → bytes. */
const saved = new Map<string, Buffer>();
const saveResult: ResultSink = async (prefix, png) => {
  const name = `${prefix}-${saved.size}.png`;
  saved.set(name, png);
  return { name, url: `/api/results/${name}` };
};

function validated(raw: unknown): Graph {
  const r = validateGraph(raw, catalog);
  expect(r.issues).toEqual([]);
  return r.graph!;
}

/** Runs a graph and returns its summary and every event in order. */
async function run(graph: Graph, cache: OutputCache, extra: Partial<ExecuteOptions> = {}) {
  const events: ExecEvent[] = [];
  const summary = await executeGraph({
    jobId: 'job',
    graph,
    catalog,
    services,
    cache,
    saveResult,
    signal: new AbortController().signal,
    emit: (e) => events.push(e),
    ...extra,
  });
  return { summary, events };
}

const started = (events: ExecEvent[]) => events.filter((e) => e.type === 'node:started').map((e) => e.nodeId);
const cachedDone = (events: ExecEvent[]) =>
  events.filter((e): e is Extract<ExecEvent, { type: 'node:done' }> => e.type === 'node:done' && e.cached).map((e) => e.nodeId);

/** A → B → C and A → D, with C and D shown by output nodes. */
function diamond(bOffset: number) {
  return validated(
    graphJson(
      [
        { id: 'A', type: 'Constant', params: { value: 10 } },
        { id: 'B', type: 'Add', params: { offset: bOffset } },
        { id: 'C', type: 'Add', params: { offset: 100 } },
        { id: 'D', type: 'Add', params: { offset: 1000 } },
        { id: 'showC', type: 'Show' },
        { id: 'showD', type: 'Show' },
      ],
      [
        ['A', 'value', 'B', 'a'],
        ['B', 'sum', 'C', 'a'],
        ['A', 'value', 'D', 'a'],
        ['C', 'sum', 'showC', 'value'],
        ['D', 'sum', 'showD', 'value'],
      ],
    ),
  );
}

beforeEach(() => {
  runLog.length = 0;
});

describe('executeGraph', () => {
  it('runs nodes in topological order and reports results of output nodes', async () => {
    const { summary, events } = await run(diamond(1), new OutputCache());
    expect(summary.computed).toEqual(['A', 'B', 'C', 'D', 'showC', 'showD']);
    expect(runLog).toEqual(summary.computed);
    expect(summary.cached).toEqual([]);
    expect(summary.results).toEqual({ showC: { text: '111' }, showD: { text: '1010' } });
    // Each computed node: started before done, and done carries the result for output nodes.
    for (const id of summary.computed) {
      const s = events.findIndex((e) => e.type === 'node:started' && e.nodeId === id);
      const d = events.findIndex((e) => e.type === 'node:done' && e.nodeId === id);
      expect(s).toBeGreaterThanOrEqual(0);
      expect(d).toBeGreaterThan(s);
    }
    expect(events.find((e) => e.type === 'node:done' && e.nodeId === 'showC')).toMatchObject({ cached: false, result: { text: '111' } });
  });

  it('changing a parameter of B recomputes only B and its downstream', async () => {
    const cache = new OutputCache();
    await run(diamond(1), cache);
    runLog.length = 0;
    const { summary, events } = await run(diamond(2), cache);
    expect(started(events)).toEqual(['B', 'C', 'showC']);
    expect(runLog).toEqual(['B', 'C', 'showC']);
    expect(cachedDone(events)).toEqual(['A', 'D', 'showD']);
    expect(summary.cached).toEqual(['A', 'D', 'showD']);
    expect(summary.results).toEqual({ showC: { text: '112' }, showD: { text: '1010' } });
    // A cached node is announced by node:done with cached: true and no node:started.
    expect(events.find((e) => e.type === 'node:done' && e.nodeId === 'showD')).toMatchObject({ cached: true, result: { text: '1010' } });
  });

  it('the same graph twice is served entirely from the cache', async () => {
    const cache = new OutputCache();
    const first = await run(diamond(1), cache);
    runLog.length = 0;
    const second = await run(diamond(1), cache);
    expect(runLog).toEqual([]);
    expect(started(second.events)).toEqual([]);
    expect(second.summary.cached).toEqual(first.summary.computed);
    expect(second.summary.results).toEqual(first.summary.results);
    expect(second.summary.keys).toEqual(first.summary.keys);
  });

  it('keys ignore node ids, positions and key order in params', async () => {
    const cache = new OutputCache();
    await run(diamond(1), cache);
    const moved = diamond(1);
    const rename = (id: string) => `renamed-${id}`;
    moved.nodes = moved.nodes.map((n) => ({ ...n, id: rename(n.id), position: { x: n.position.x + 5, y: 9 } }));
    moved.edges = moved.edges.map((e) => ({ from: { ...e.from, node: rename(e.from.node) }, to: { ...e.to, node: rename(e.to.node) } }));
    runLog.length = 0;
    await run(moved, cache);
    expect(runLog).toEqual([]);
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 0, y: 1 }], c: undefined } })).toBe('{"a":{"d":[1,{"y":1,"z":0}]},"b":1}');
    expect(contentKey({ type: 'T', params: { a: 1, b: 2 }, inputs: {} })).toBe(contentKey({ type: 'T', params: { b: 2, a: 1 }, inputs: {} }));
    expect(contentKey({ type: 'T', params: { a: 1 }, inputs: {} })).not.toBe(contentKey({ type: 'T', params: { a: 2 }, inputs: {} }));
  });

  it('a changed identity (e.g. a new model file) invalidates the node and its downstream', async () => {
    const cache = new OutputCache();
    const g = validated(
      graphJson(
        [
          { id: 'src', type: 'Fingerprinted' },
          { id: 'k', type: 'Constant' },
          { id: 'sum', type: 'Add' },
          { id: 'show', type: 'Show' },
        ],
        [
          ['src', 'value', 'sum', 'a'],
          ['k', 'value', 'sum', 'b'],
          ['sum', 'sum', 'show', 'value'],
        ],
      ),
    );
    fingerprint.value = 'v1';
    await run(g, cache);
    runLog.length = 0;
    await run(g, cache);
    expect(runLog).toEqual([]);
    fingerprint.value = 'v2';
    const { events } = await run(g, cache);
    expect(started(events)).toEqual(['src', 'sum', 'show']);
    expect(cachedDone(events)).toEqual(['k']);
  });

  it('a node id that is an Object.prototype member keys and reports like any other', async () => {
    const cache = new OutputCache();
    const graph = (value: number) =>
      validated(
        graphJson(
          [
            { id: '__proto__', type: 'Constant', params: { value } },
            { id: 'constructor', type: 'Show' },
          ],
          [['__proto__', 'value', 'constructor', 'value']],
        ),
      );
    const one = await run(graph(1), cache);
    expect(one.summary.results).toEqual({ constructor: { text: '1' } });
    expect(Object.keys(one.summary.keys)).toEqual(['__proto__', 'constructor']);
    // A different upstream value must give a different downstream key, not a cache hit.
    const two = await run(graph(2), cache);
    expect(two.summary.computed).toEqual(['__proto__', 'constructor']);
    expect(two.summary.results.constructor).toEqual({ text: '2' });
    expect(two.summary.warnings.constructor).toBeUndefined();
  });

  it('runs only the requested outputs and their ancestors', async () => {
    const { summary } = await run(diamond(1), new OutputCache(), { outputs: ['showD'] });
    expect(summary.computed).toEqual(['A', 'D', 'showD']);
    // The plan the job runner announces is exactly what runs.
    expect(planRun(diamond(1), catalog, ['showD'])).toEqual(summary.computed);
    const all = await run(diamond(1), new OutputCache());
    expect(planRun(diamond(1), catalog)).toEqual(all.summary.computed);
    await expect(run(diamond(1), new OutputCache(), { outputs: ['nope'] })).rejects.toThrow('Cannot run node "nope": there is no such node in the graph.');
  });

  it('a bypassed node does not run and passes its input of the same type through', async () => {
    const g = diamond(1);
    g.nodes.find((n) => n.id === 'B')!.mode = 'bypass';
    const { summary } = await run(validated(g), new OutputCache());
    expect(summary.computed).toEqual(['A', 'C', 'D', 'showC', 'showD']);
    // C gets A's value as if B were not there: 10 + 100.
    expect(summary.results).toEqual({ showC: { text: '110' }, showD: { text: '1010' } });
    expect(planRun(g, catalog)).toEqual(summary.computed);
    // The same content as A wired straight into C: the same cache key.
    const direct = graphJson(
      [
        { id: 'A', type: 'Constant', params: { value: 10 } },
        { id: 'C', type: 'Add', params: { offset: 100 } },
        { id: 'showC', type: 'Show' },
      ],
      [
        ['A', 'value', 'C', 'a'],
        ['C', 'sum', 'showC', 'value'],
      ],
    );
    expect((await run(validated(direct), new OutputCache())).summary.keys.showC).toBe(summary.keys.showC);
  });

  it('a muted node does not run, nor what needs its output; an optional input it fed counts as unconnected', async () => {
    const g = diamond(1);
    g.nodes.find((n) => n.id === 'C')!.mode = 'mute';
    const muted = await run(validated(g), new OutputCache());
    expect(muted.summary.computed).toEqual(['A', 'D', 'showD']);
    expect(muted.summary.results).toEqual({ showD: { text: '1010' } });
    expect(planRun(g, catalog)).toEqual(muted.summary.computed);
    // D takes B's sum on its optional input b; muting B leaves D running without it.
    const h = diamond(1);
    h.edges.push({ from: { node: 'B', output: 'sum' }, to: { node: 'D', input: 'b' } });
    expect((await run(validated(h), new OutputCache())).summary.results.showD).toEqual({ text: '1021' });
    h.nodes.find((n) => n.id === 'B')!.mode = 'mute';
    const optional = await run(validated(h), new OutputCache());
    expect(optional.summary.computed).toEqual(['A', 'D', 'showD']);
    expect(optional.summary.results).toEqual({ showD: { text: '1010' } });
  });

  it('replays warnings when a node is served from the cache', async () => {
    const cache = new OutputCache();
    const g = validated(
      graphJson(
        [
          { id: 'k', type: 'Constant' },
          { id: 'enc', type: 'Warner' },
          { id: 'show', type: 'Show' },
        ],
        [
          ['k', 'value', 'enc', 'x'],
          ['enc', 'y', 'show', 'value'],
        ],
      ),
    );
    const first = await run(g, cache);
    expect(first.events.filter((e) => e.type === 'node:warning')).toEqual([{ type: 'node:warning', nodeId: 'enc', message: 'prompt truncated to 77 tokens' }]);
    expect(first.summary.warnings).toEqual({ enc: ['prompt truncated to 77 tokens'] });
    const second = await run(g, cache);
    expect(second.summary.cached).toContain('enc');
    const warn = second.events.findIndex((e) => e.type === 'node:warning' && e.nodeId === 'enc');
    const done = second.events.findIndex((e) => e.type === 'node:done' && e.nodeId === 'enc');
    expect(warn).toBeGreaterThanOrEqual(0);
    expect(warn).toBeLessThan(done);
    expect(second.summary.warnings).toEqual({ enc: ['prompt truncated to 77 tokens'] });
  });

  it('cancellation mid-node throws CancelledError, and a later job still runs', async () => {
    const cache = new OutputCache();
    const g = validated(
      graphJson(
        [
          { id: 'slow', type: 'SlowCounter', params: { steps: 50, delayMs: 5 } },
          { id: 'after', type: 'Add' },
          { id: 'show', type: 'Show' },
        ],
        [
          ['slow', 'count', 'after', 'a'],
          ['after', 'sum', 'show', 'value'],
        ],
      ),
    );
    const controller = new AbortController();
    const events: ExecEvent[] = [];
    const job = executeGraph({
      jobId: 'j1',
      graph: g,
      catalog,
      services,
      cache,
      saveResult,
      signal: controller.signal,
      emit(e) {
        events.push(e);
        if (e.type === 'node:progress') controller.abort();
      },
    });
    await expect(job).rejects.toBeInstanceOf(CancelledError);
    const progress = events.filter((e) => e.type === 'node:progress');
    expect(progress).toHaveLength(1);
    expect(events.some((e) => e.type === 'node:done')).toBe(false);
    expect(runLog).toEqual(['slow']);
    expect(cache.size).toBe(0);

    // The next job on the same cache is unaffected.
    const fast = validated(
      graphJson(
        [
          { id: 'slow', type: 'SlowCounter', params: { steps: 2, delayMs: 0 } },
          { id: 'show', type: 'Show' },
        ],
        [['slow', 'count', 'show', 'value']],
      ),
    );
    const { summary } = await run(fast, cache);
    expect(summary.results).toEqual({ show: { text: '2' } });
  });

  it('an already-aborted signal cancels before any node runs', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(run(diamond(1), new OutputCache(), { signal: controller.signal })).rejects.toBeInstanceOf(CancelledError);
    expect(runLog).toEqual([]);
  });

  it('a throwing node fails the job with its id and message; the next job runs fine', async () => {
    const cache = new OutputCache();
    const g = validated(
      graphJson(
        [
          { id: 'k', type: 'Constant' },
          { id: 'boom', type: 'Thrower', title: 'Sampler', params: { message: 'NaN at step 3' } },
          { id: 'show', type: 'Show' },
        ],
        [
          ['k', 'value', 'boom', 'x'],
          ['boom', 'y', 'show', 'value'],
        ],
      ),
    );
    const events: ExecEvent[] = [];
    const err = await executeGraph({
      jobId: 'j',
      graph: g,
      catalog,
      services,
      cache,
      saveResult,
      signal: new AbortController().signal,
      emit: (e) => events.push(e),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NodeFailedError);
    const failed = err as NodeFailedError;
    expect(failed.nodeId).toBe('boom');
    expect(failed.nodeType).toBe('Thrower');
    expect(failed.message).toBe('Sampler (boom) failed: NaN at step 3');
    expect(failed.detail).toBe('NaN at step 3');
    expect(events.some((e) => e.type === 'node:done' && e.nodeId === 'boom')).toBe(false);
    expect(runLog).toEqual(['k', 'boom']);
    // The constant's output was cached; the failure left nothing broken.
    const { summary } = await run(diamond(1), cache);
    expect(summary.results.showC).toEqual({ text: '111' });
  });

  it('a node that does not produce a declared output fails clearly', async () => {
    const g = validated(
      graphJson(
        [
          { id: 'f', type: 'Forgetful' },
          { id: 'show', type: 'Show' },
        ],
        [['f', 'y', 'show', 'value']],
      ),
    );
    await expect(run(g, new OutputCache())).rejects.toThrow('Forgetful (f) failed: node type "Forgetful" did not produce output "y"');
  });

  it('previews are throttled: previewDue is false within the interval', async () => {
    const g = validated(
      graphJson(
        [
          { id: 'slow', type: 'SlowCounter', params: { steps: 6, delayMs: 0 } },
          { id: 'show', type: 'Show' },
        ],
        [['slow', 'count', 'show', 'value']],
      ),
    );
    // With a long interval only the first step's frame gets through.
    const throttled = await run(g, new OutputCache(), { previewIntervalMs: 60_000 });
    const frames = throttled.events.filter((e) => e.type === 'node:preview');
    expect(frames).toHaveLength(1);
    expect(frames[0]).toMatchObject({ nodeId: 'slow', step: 1, total: 6 });
    expect(throttled.events.filter((e) => e.type === 'node:progress')).toHaveLength(6);
    // With no interval every step previews.
    const open = await run(g, new OutputCache(), { previewIntervalMs: 0 });
    expect(open.events.filter((e) => e.type === 'node:preview').map((e) => (e as { step: number }).step)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("ctx.saveResult stores an output node's file through the executor's sink and reports its size", async () => {
    saved.clear();
    const g = validated(
      graphJson(
        [
          { id: 'k', type: 'Constant', params: { value: 200 } },
          { id: 'save', type: 'Save' },
        ],
        [['k', 'value', 'save', 'value']],
      ),
    );
    const { summary } = await run(g, new OutputCache());
    const image = summary.results.save!.images![0]!;
    expect(image).toEqual({ name: 'test-0.png', url: '/api/results/test-0.png', width: 16, height: 16 });
    expect(saved.get('test-0.png')!.subarray(1, 4).toString()).toBe('PNG');
  });
});

/** The result gallery (over a real studio's history) and the PNG download's names and summary (no browser needed). */
import { promises as fs } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Graph } from '../server/protocol/graph.ts';
import type { Studio } from '../server/app.ts';
import { fileStem, graphSummary } from '../client/src/app/downloads.ts';
import { Gallery, type HistorySource } from '../client/src/app/gallery.ts';
import { api, EventLog, graphOf, startTestStudio, tempDir } from './support/api-harness.ts';

const graph: Graph = {
  format: 'dualstyle-graph',
  version: 1,
  meta: {},
  nodes: [
    { id: 'style1', type: 'TextPrompt', title: 'Style 1', params: { text: 'a painting of [prompt]' }, position: { x: 0, y: 0 } },
    { id: 'mask', type: 'Mask', params: { sharpness: 20 }, position: { x: 0, y: 0 } },
    { id: 'save_a', type: 'SaveImage', params: {}, position: { x: 0, y: 0 } },
    { id: 'save_b', type: 'SaveImage', params: {}, position: { x: 0, y: 0 } },
  ],
  edges: [],
};

let dataDir: string;
let studio: Studio;
let events: EventLog;
let source: HistorySource;

beforeAll(async () => {
  dataDir = await tempDir('gallery');
  studio = await startTestStudio(dataDir);
  events = await EventLog.connect(studio);
  source = {
    history: async (offset, limit) => (await api(studio, 'GET', `/api/history?offset=${offset}&limit=${limit}`)).body,
    job: async (id) => {
      const res = await api(studio, 'GET', `/api/jobs/${id}`);
      if (res.status !== 200) throw new Error(res.body.error.message);
      return res.body;
    },
  };
});

afterAll(async () => {
  events?.close();
  await studio?.close();
  await fs.rm(dataDir, { recursive: true, force: true });
});

/** value → two Save nodes (A titled, B not) and a Show (text only): the gallery lists the two images. */
function twoSaves(value: number, title: string): Graph {
  const g = graphOf(
    [
      { id: 'n', type: 'Constant', params: { value } },
      { id: 'save_a', type: 'Save' },
      { id: 'save_b', type: 'Save' },
    ],
    ['n.value -> save_a.value', 'n.value -> save_b.value'],
    title,
  );
  g.nodes.find((n) => n.id === 'save_a')!.title = 'Epsilon merge';
  return g;
}

async function run(g: Graph): Promise<string> {
  const res = await api(studio, 'POST', '/api/jobs', { graph: g });
  expect(res.status).toBe(202);
  const id = res.body.job.id as string;
  expect((await events.waitForEnd(id)).name).toBe('job:done');
  return id;
}

function memoryStorage() {
  const map = new Map<string, string>();
  return { getItem: (k: string) => map.get(k) ?? null, setItem: (k: string, v: string) => void map.set(k, v), removeItem: (k: string) => void map.delete(k) };
}

describe('gallery', () => {
  it('lists the output images of the server history, newest first, each with the graph of its run', async () => {
    const first = await run(twoSaves(1, 'first graph'));
    const second = await run(twoSaves(2, 'second graph'));
    const gallery = new Gallery(source, memoryStorage());
    gallery.recordJob(second, { graph: twoSaves(2, 'second graph'), graphLabel: 'my doc' });
    await gallery.refresh();
    const list = gallery.images.get();
    expect(list.map((i) => [i.jobId, i.nodeId, i.title, i.graphLabel])).toEqual([
      [second, 'save_b', 'Save', 'my doc'],
      [second, 'save_a', 'Epsilon merge', 'my doc'],
      [first, 'save_b', 'Save', 'first graph'],
      [first, 'save_a', 'Epsilon merge', 'first graph'],
    ]);
    // A job this tab did not submit: its graph comes from the server.
    const job = await gallery.jobOfImage(list[2]!);
    expect(job).toMatchObject({ graphLabel: 'first graph', graph: { meta: { title: 'first graph' }, nodes: expect.any(Array) } });
    expect(job!.graph.nodes.map((n) => n.id)).toEqual(['n', 'save_a', 'save_b']);
    expect((await gallery.jobOf(list[0]!.url))?.graphLabel).toBe('my doc');
  });

  it('lists a picture a later (cached) run made again once, with the newer run', async () => {
    const again = await run(twoSaves(1, 'first graph, again'));
    const gallery = new Gallery(source, memoryStorage());
    await gallery.refresh();
    const ofValue1 = gallery.images.get().filter((i) => i.graphLabel.startsWith('first graph'));
    expect(ofValue1.map((i) => [i.jobId, i.graphLabel])).toEqual([
      [again, 'first graph, again'],
      [again, 'first graph, again'],
    ]);
  });

  it('keeps what this browser removed or cleared, and lists newer results again', async () => {
    const storage = memoryStorage();
    const gallery = new Gallery(source, storage);
    await gallery.refresh();
    const [top, next] = gallery.images.get();
    gallery.remove([top!.key]);
    expect(gallery.images.get()[0]!.key).toBe(next!.key);
    const reopened = new Gallery(source, storage);
    await reopened.refresh();
    expect(reopened.images.get().map((i) => i.key)).not.toContain(top!.key);
    reopened.clear();
    expect(reopened.images.get()).toEqual([]);
    // The server's history is untouched; a new result shows up.
    expect((await source.history(0, 50)).total).toBeGreaterThanOrEqual(3);
    const later = await run(twoSaves(5, 'later'));
    await reopened.refresh();
    expect(reopened.images.get().map((i) => i.jobId)).toEqual([later, later]);
  });
});

describe('result PNG download', () => {
  it('names files after the graph and node, safely', () => {
    expect(fileStem('epsilon-merge')).toBe('epsilon-merge');
    expect(fileStem('Epsilon merge: Van Gogh left, Minecraft right')).toBe('Epsilon-merge-Van-Gogh-left-Minecraft-right');
    expect(fileStem('../../etc/passwd')).toBe('etc-passwd');
    expect(fileStem('«»')).toBe('graph');
  });

  it('writes a readable summary with every node and its settings', () => {
    const text = graphSummary(graph, 'comparison');
    expect(text.split('\n')[0]).toContain('comparison');
    expect(text).toContain('Style 1 [style1] — text: a painting of [prompt]');
    expect(text).toContain('Mask [mask] — sharpness: 20');
    expect(text).toContain('SaveImage [save_a]');
  });
});

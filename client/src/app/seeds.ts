/**
 * Seeds across runs, as ComfyUI's "control after generate" and batch count: what each queued run of a
 * batch uses, and what the seed fields hold after the batch is queued. Every integer parameter named
 * `seed` of the graph follows the one control chosen beside Run.
 */
import type { Catalog } from '../../../server/protocol/catalog.ts';
import type { Graph } from '../../../server/protocol/graph.ts';

/** Most runs one click queues. */
export const MAX_BATCH = 100;

export type SeedControl = 'fixed' | 'increment' | 'decrement' | 'randomize';

export const SEED_CONTROLS: { value: SeedControl; label: string; title: string }[] = [
  { value: 'fixed', label: 'Seed: fixed', title: 'Every run keeps the seeds (a batch still runs successive seeds)' },
  { value: 'increment', label: 'Seed: +1', title: 'After each run, every seed goes up by one' },
  { value: 'decrement', label: 'Seed: −1', title: 'After each run, every seed goes down by one' },
  { value: 'randomize', label: 'Seed: random', title: 'After each run, every seed is drawn at random' },
];

export interface SeedField {
  nodeId: string;
  param: string;
  value: number;
  min: number;
  max: number;
}

/** The seed fields of a graph (muted and bypassed nodes left out: they do not run). */
export function seedFields(graph: Graph, catalog: Catalog): SeedField[] {
  const out: SeedField[] = [];
  for (const node of graph.nodes) {
    if (node.mode) continue;
    const spec = catalog.nodes.find((s) => s.type === node.type);
    for (const p of spec?.params ?? []) {
      if (p.name !== 'seed' || p.kind !== 'integer') continue;
      const v = node.params[p.name] ?? p.default;
      if (typeof v !== 'number' || !Number.isFinite(v)) continue;
      out.push({ nodeId: node.id, param: p.name, value: v, min: p.min ?? 0, max: p.max ?? 2 ** 32 - 1 });
    }
  }
  return out;
}

/** The seed after `value` under `control` (fixed counts up: a batch of fixed runs would repeat itself). */
export function nextSeed(control: SeedControl, value: number, min: number, max: number, random: () => number = Math.random): number {
  switch (control) {
    case 'decrement':
      return value <= min ? max : value - 1;
    case 'randomize':
      return min + Math.floor(random() * (max - min + 1));
    case 'fixed':
    case 'increment':
      return value >= max ? min : value + 1;
  }
}

export interface SeedPlan {
  /** The graph of each run, in order. */
  runs: Graph[];
  /** Each run's seeds ("node.param" → seed), to tell the runs apart. */
  seeds: Record<string, number>[];
  /** What the seed fields hold once the batch is queued (unchanged when fixed). */
  after: SeedField[];
}

/** `count` runs of `graph`: the first with its seeds as they are, each further one with the next seeds. */
export function planSeeds(graph: Graph, catalog: Catalog, control: SeedControl, count: number, random: () => number = Math.random): SeedPlan {
  const fields = seedFields(graph, catalog);
  const runs: Graph[] = [];
  const seeds: Record<string, number>[] = [];
  let current = fields.map((f) => f.value);
  for (let k = 0; k < count; k++) {
    if (k > 0) current = fields.map((f, i) => nextSeed(control, current[i]!, f.min, f.max, random));
    const now = current;
    seeds.push(Object.fromEntries(fields.map((f, i) => [`${f.nodeId}.${f.param}`, now[i]!])));
    runs.push({
      ...graph,
      nodes: graph.nodes.map((n) => {
        const mine = fields.flatMap((f, i) => (f.nodeId === n.id ? [[f.param, now[i]!] as const] : []));
        return mine.length ? { ...n, params: { ...n.params, ...Object.fromEntries(mine) } } : n;
      }),
    });
  }
  const after = control === 'fixed' ? fields : fields.map((f, i) => ({ ...f, value: nextSeed(control, current[i]!, f.min, f.max, random) }));
  return { runs, seeds, after };
}

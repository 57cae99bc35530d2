/**
 * Runs of one graph tab: every Run queues the graph as a job (Ctrl+Shift+Enter puts it first in line),
 * after the server has checked it; the studio's tracker follows every job of the server and paints the
 * nodes of this tab with the jobs run from it (or, another browser tab's, of the graph it holds).
 * Cancel stops the job this browser tab looks at, or one from the queue.
 */
import type { Catalog } from '../../../../server/protocol/catalog.ts';
import type { Graph } from '../../../../server/protocol/graph.ts';
import type { JobSummary } from '../../../../server/protocol/events.ts';
import { api, ApiError } from '../../api.ts';
import type { StudioEditor } from '../../editor/create-editor.tsx';
import { MAX_BATCH, planSeeds, type SeedControl } from '../seeds.ts';
import type { PaintTarget } from '../jobs.ts';
import { useStudio } from '../studio-store.ts';
import { useStableCallback } from './useLatest.ts';
import type { Notify } from './useToasts.ts';
import type { Validation } from './useValidation.ts';

/** The title a node shows: its own, else its type's (the id when the node is gone). */
export function nodeLabel(editor: StudioEditor | null, catalog: Catalog, nodeId: string): string {
  const n = editor?.snapshot().nodes.find((x) => x.id === nodeId);
  if (!n) return nodeId;
  return n.title ?? catalog.nodes.find((s) => s.type === n.type)?.title ?? n.type;
}

/** What a queued run is called in the Queue and Results: the document's name, its seed, its place in a batch. */
export function runTitle(docLabel: string, seeds: Record<string, number>, k: number, count: number): string {
  const values = [...new Set(Object.values(seeds))];
  return [docLabel, count > 1 ? `run ${k + 1} of ${count}` : null, values.length ? `seed ${values.join('/')}` : null].filter(Boolean).join(' · ');
}

/** Prompts that run empty ("Source prompt → text"): worth a word before the job goes. */
export function emptyPrompts(graph: Graph, catalog: Catalog): string[] {
  const out: string[] = [];
  for (const n of graph.nodes) {
    if (n.mode) continue;
    const spec = catalog.nodes.find((s) => s.type === n.type);
    for (const p of spec?.params ?? []) {
      if (p.kind !== 'text' || p.optional) continue;
      const v = n.params[p.name] ?? p.default;
      if (typeof v === 'string' && v.trim() === '') out.push(`${n.title ?? spec!.title} → ${p.label || p.name}`);
    }
  }
  return out;
}

export interface RunsOptions {
  editor: StudioEditor | null;
  /** This tab's nodes, as the tracker paints them (usePaintTarget). */
  target: PaintTarget;
  catalog: Catalog;
  notify: Notify;
  validation: Validation;
  currentGraph(): Graph;
  docLabel: string;
  /** The server found problems: show them. */
  onProblems(): void;
}

export function useRuns({ editor, target, catalog, notify, validation, currentGraph, docLabel, onProblems }: RunsOptions) {
  const studio = useStudio();
  const { tracker, gallery } = studio;

  const refuse = (issues: NonNullable<ApiError['issues']>) => {
    onProblems();
    notify('error', `Cannot run yet: ${issues.length} problem${issues.length === 1 ? '' : 's'} to fix (see Problems).`);
  };

  /** Queues the graph (first in line with `front`); nothing is sent that the server would refuse. */
  const run = useStableCallback(async (opts: { front?: boolean; count?: number; seedControl?: SeedControl } = {}) => {
    if (!editor) return;
    // The server's answer about this graph replaces any check still pending.
    const token = validation.claim();
    const graph = currentGraph();
    let leftOut: NonNullable<ApiError['issues']>;
    try {
      const check = await api.validateForRun(graph);
      leftOut = check.warnings ?? [];
      if (check.issues.length) {
        validation.report(token, check.issues, leftOut);
        refuse(check.issues);
        return;
      }
    } catch (err) {
      validation.report(token, undefined);
      notify('error', `Cannot run: ${(err as Error).message}`);
      return;
    }
    try {
      const count = Math.max(1, Math.min(MAX_BATCH, Math.floor(opts.count ?? 1)));
      const plan = planSeeds(graph, catalog, opts.seedControl ?? 'fixed', count);
      let last: JobSummary | undefined;
      // First in line, a batch keeps its order: its last run goes in first.
      const order = opts.front ? [...plan.runs.keys()].reverse() : [...plan.runs.keys()];
      for (const k of order) {
        const runGraph = { ...plan.runs[k]!, meta: { ...plan.runs[k]!.meta, runTitle: runTitle(docLabel, plan.seeds[k]!, k, count) } };
        const { job } = await api.submitJob(runGraph, { front: opts.front });
        gallery.recordJob(job.id, { graph: runGraph, graphLabel: docLabel });
        tracker.follow(job, target);
        last = job;
      }
      // The seed fields move on as the control says (after the whole batch, as ComfyUI's "control after generate").
      for (const f of plan.after) if (graph.nodes.find((n) => n.id === f.nodeId)?.params[f.param] !== f.value) editor.setParam(f.nodeId, f.param, f.value);
      validation.report(token, [], leftOut);
      const skipped = [...new Set(leftOut.flatMap((i) => (i.nodeId ? [nodeLabel(editor, catalog, i.nodeId)] : [])))];
      if (skipped.length)
        notify(
          'info',
          `Left out of this run (no output needs ${skipped.length === 1 ? 'it' : 'them'}, and ${skipped.length === 1 ? 'it has' : 'they have'} problems): ${skipped.join(', ')}.`,
        );
      const empty = emptyPrompts(graph, catalog);
      if (empty.length) notify('info', `Running with an empty prompt in ${empty.join(', ')}: the model gets no words from it.`);
      if (count > 1) {
        const first = Object.values(plan.seeds[0] ?? {})[0];
        const lastSeed = Object.values(plan.seeds.at(-1) ?? {})[0];
        notify('info', `Queued ${count} runs${first !== undefined ? ` (seed ${first} … ${lastSeed})` : ''}: see Queue.`);
      } else if (opts.front && studio.jobs.queueView.get()?.running) notify('info', 'Queued first in line: it runs as soon as the current job ends.');
      else if ((last?.position ?? 0) > 1) notify('info', `Queued: #${last!.position} in line (see Queue).`);
    } catch (err) {
      if (err instanceof ApiError && err.issues.length) {
        validation.report(token, err.issues);
        refuse(err.issues);
      } else {
        validation.report(token, undefined);
        notify('error', `Cannot run: ${(err as Error).message}`);
      }
    }
  });

  /** Cancels a job: the one this tab looks at by default. */
  const cancel = useStableCallback(async (jobId?: string) => {
    const id = jobId ?? tracker.activeJobId();
    if (!id) return;
    try {
      await api.cancelJob(id);
    } catch (err) {
      notify('error', `Cannot cancel: ${(err as Error).message}`);
    }
  });

  return { run, cancel, watch: (jobId: string) => tracker.watch(jobId), hasActiveJob: () => tracker.activeJobId() !== null };
}

/**
 * Opening the graph a run ran (the job record keeps it): from Results or from the Queue, as a new,
 * unsaved graph titled after the run ("three-styles (from run #1a2b3c)"), so the run's settings can
 * be looked at, changed and run again without downloading its PNG and dropping it back.
 */
import type { JobSummary } from '../../../../server/protocol/events.ts';
import type { Graph } from '../../../../server/protocol/graph.ts';
import { api } from '../../api.ts';
import type { StudioDocument } from './useDocument.ts';
import { useStableCallback } from './useLatest.ts';
import type { Notify } from './useToasts.ts';

const FROM_RUN = / \(from run #[0-9a-z]+\)$/;
/** What useRuns' runTitle adds to the document's name: the place in a batch, the seed. */
const RUN_PARTS = /( · run \d+ of \d+)?( · seed [\d/]+)?$/;

/**
 * The title a run's graph opens under: the name the run was queued under (without the seed and batch
 * place it adds, which the next run adds again), and which run (the start of its job id).
 */
export function runGraphTitle(job: Pick<JobSummary, 'id' | 'title'>, graph: Graph): string {
  const named = job.title?.replace(RUN_PARTS, '') || (typeof graph.meta.title === 'string' ? graph.meta.title : '') || 'Untitled graph';
  return `${named.replace(FROM_RUN, '')} (from run #${job.id.slice(0, 6)})`;
}

export function useOpenRun(studioDoc: Pick<StudioDocument, 'openGraph'>, notify: Notify) {
  /**
   * Opens `graph` as a new unsaved document titled `title`: in this graph tab when it holds nothing of
   * the user's, else in a tab of its own (useDocument's openGraph).
   */
  const openGraph = useStableCallback(async (graph: Graph, title: string) => {
    const { runTitle: _ran, ...meta } = graph.meta;
    await studioDoc.openGraph({ graph: { ...graph, meta: { ...meta, title } }, name: null, source: null });
    notify('info', `Opened ${title}: save it to keep it.`);
  });
  const openRun = useStableCallback(async (jobId: string) => {
    try {
      const detail = await api.job(jobId);
      await openGraph(detail.graph, runGraphTitle(detail.job, detail.graph));
    } catch (err) {
      notify('error', `Cannot open the graph of that run: ${(err as Error).message}`);
    }
  });
  return { openGraph, openRun };
}

/**
 * One graph tab as the studio's job tracker sees it: the run states of its nodes, the ids on its
 * canvas, and whether it holds a given graph (another browser tab's run of the same graph paints it
 * too). Registered for the tab's lifetime; `detach` stops the runs so far from painting it (another
 * graph replaces its content, and templates share node ids).
 */
import { useEffect, useMemo } from 'react';
import type { StudioEditor } from '../../editor/create-editor.tsx';
import { graphContent } from '../../graph-io.ts';
import type { NodeRuntimeStore } from '../../runtime.ts';
import type { PaintTarget } from '../jobs.ts';
import { useStudio } from '../studio-store.ts';
import { useStableCallback } from './useLatest.ts';

export function usePaintTarget(editor: StudioEditor | null, runtime: NodeRuntimeStore) {
  const { tracker, jobs } = useStudio();
  const target = useMemo<PaintTarget>(
    () => ({
      runtime,
      nodeIds: () => editor?.snapshot().nodes.map((n) => n.id) ?? [],
      holds: (graph) => editor !== null && graphContent(graph) === graphContent(editor.toGraph()),
    }),
    [runtime, editor],
  );
  useEffect(() => tracker.register(target), [tracker, target]);
  const detach = useStableCallback(() => {
    // A run of the previous graph may still be going: it stays cancellable from the toolbar, but
    // its events must not paint this graph's nodes.
    tracker.detachNodes(target);
    if (!tracker.activeJobId()) jobs.jobView.set(null);
  });
  return { target, detach };
}

/**
 * Runs: submitting the graph as a job (the server checks it first), following its events, and
 * cancelling it. The tracker turns job events into node state and the toolbar's job view.
 */
import { useEffect, useState } from 'react';
import type { Catalog } from '../../../../server/protocol/catalog.ts';
import type { Graph } from '../../../../server/protocol/graph.ts';
import { api, ApiError } from '../../api.ts';
import type { StudioEditor } from '../../editor/create-editor.tsx';
import { nodeRuntime } from '../../runtime.ts';
import { gallery } from '../gallery.ts';
import { JobTracker, jobView, setNodeIdSource } from '../jobs.ts';
import { useStableCallback } from './useLatest.ts';
import type { Notify } from './useToasts.ts';
import type { Validation } from './useValidation.ts';

/** The title a node shows: its own, else its type's (the id when the node is gone). */
export function nodeLabel(editor: StudioEditor | null, catalog: Catalog, nodeId: string): string {
  const n = editor?.snapshot().nodes.find((x) => x.id === nodeId);
  if (!n) return nodeId;
  return n.title ?? catalog.nodes.find((s) => s.type === n.type)?.title ?? n.type;
}

export interface RunsOptions {
  editor: StudioEditor | null;
  catalog: Catalog;
  notify: Notify;
  validation: Validation;
  currentGraph(): Graph;
  docLabel: string;
  /** The server found problems: show them. */
  onProblems(): void;
}

export function useRuns({ editor, notify, validation, currentGraph, docLabel, onProblems }: RunsOptions) {
  // One socket per studio, for its lifetime.
  // The gallery lists the server's history: read it now, and again whenever any tab's job ends.
  const [tracker] = useState(() => new JobTracker(notify, () => void gallery.refresh()));
  useEffect(() => void gallery.refresh(), []);
  useEffect(() => () => tracker.close(), [tracker]);
  useEffect(() => {
    if (editor) setNodeIdSource(() => editor.snapshot().nodes.map((n) => n.id));
  }, [editor]);

  const run = useStableCallback(async () => {
    if (!editor) return;
    if (tracker.activeJobId()) {
      notify('info', 'A run is already in progress. Press Esc to cancel it.');
      return;
    }
    // The server checks the graph it is given: that answer replaces any check still pending.
    const token = validation.claim();
    const graph = currentGraph();
    const graphLabel = docLabel;
    try {
      const { job: submitted } = await api.submitJob(graph);
      gallery.recordJob(submitted.id, { graph, graphLabel });
      nodeRuntime.resetRun(graph.nodes.map((n) => n.id), 'idle');
      tracker.follow(submitted.id, submitted.position);
      validation.report(token, []);
    } catch (err) {
      if (err instanceof ApiError && err.issues.length) {
        validation.report(token, err.issues);
        onProblems();
        notify('error', `Cannot run yet: ${err.issues.length} problem${err.issues.length === 1 ? '' : 's'} to fix (see Problems).`);
      } else {
        validation.report(token, undefined);
        notify('error', `Cannot run: ${(err as Error).message}`);
      }
    }
  });

  const cancel = useStableCallback(async () => {
    const id = tracker.activeJobId();
    if (!id) return;
    try {
      await api.cancelJob(id);
    } catch (err) {
      notify('error', `Cannot cancel: ${(err as Error).message}`);
    }
  });

  /** Another graph is about to replace the canvas: the runs so far no longer paint its nodes. */
  const detach = useStableCallback(() => {
    // A run of the previous graph may still be going: it stays cancellable from the toolbar, but
    // its events must not paint this graph's nodes (templates share node ids).
    tracker.detachNodes();
    if (!tracker.activeJobId()) jobView.set(null);
  });

  return { run, cancel, detach, hasActiveJob: () => tracker.activeJobId() !== null };
}

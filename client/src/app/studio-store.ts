/**
 * The studio's state, made in one place (App) and handed down: React components read it through
 * StudioContext, node views through their node environment (editor/bridge.ts), and the job tracker
 * gets it in its constructor. Nothing of it lives at module level, so two studios (a test's, or a
 * second mount) never share a job view, an upload list or a socket.
 */
import { createContext, useContext } from 'react';
import type { Health, ModelEntry } from '../api.ts';
import type { ResultActions, SharedNodeState, UploadedImage } from '../editor/bridge.ts';
import { Observable } from '../runtime.ts';
import { Gallery } from './gallery.ts';
import { JobsState, JobTracker } from './jobs.ts';

export class StudioStore implements SharedNodeState {
  readonly health = new Observable<Health | null>(null);
  readonly models = new Observable<ModelEntry[]>([]);
  /** Images uploaded in this session, by the name stored in the parameter. */
  readonly uploads = new Observable<Record<string, UploadedImage>>({});
  /** How a result image on a node downloads with its run's graph: set by the active graph tab. */
  readonly resultActions = new Observable<ResultActions | null>(null);
  readonly jobs = new JobsState();
  /** The server's job history as result images. */
  readonly gallery = new Gallery();
  /** One socket per studio, for its lifetime: every graph tab's runs go through it. */
  readonly tracker: JobTracker;

  constructor(notify: (kind: 'error' | 'info', message: string) => void) {
    // The gallery lists the server's history: read it now, and again whenever any tab's job ends or the history changes.
    this.tracker = new JobTracker({ notify, onHistoryChanged: () => void this.gallery.refresh() }, this.jobs);
    void this.gallery.refresh();
  }

  close(): void {
    this.tracker.close();
  }
}

export const StudioContext = createContext<StudioStore | null>(null);

/** The studio of the component being drawn. */
export function useStudio(): StudioStore {
  const store = useContext(StudioContext);
  if (!store) throw new Error('useStudio outside a StudioContext provider');
  return store;
}

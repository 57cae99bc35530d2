/**
 * Every job of the server, as this tab sees it over socket.io. The tab "looks at" one job (its own
 * running or next one; else whatever the server runs, from any tab; or the one picked in the Queue
 * panel) and shows its progress in the toolbar. A job's events paint the nodes when the job is this
 * tab's own, or when its graph is the one on the canvas.
 */
import { io, type Socket } from 'socket.io-client';
import type { ClientToServerEvents, JobState, JobSummary, QueueState, ServerToClientEvents } from '../../../server/protocol/events.ts';
import type { Graph } from '../../../server/protocol/graph.ts';
import { accessToken } from '../access-token.ts';
import { api } from '../api.ts';
import { nodeRuntime, Observable } from '../runtime.ts';

export interface JobView {
  id: string;
  state: JobState;
  /** Submitted from this tab. */
  mine: boolean;
  /** 0 = running now, 1 = next in line, ... */
  position?: number;
  title?: string;
  message?: string;
  failedNode?: string;
  /** Node computing now (its id, and its title as the job's graph has it), with its progress. */
  currentNode?: string;
  currentTitle?: string;
  step?: number;
  total?: number;
  nodesDone?: number;
  nodesTotal?: number;
  /** This browser's clock: when it started running, and when it should be done. */
  startedAt?: number;
  etaAt?: number;
  /** How long it ran, once finished. */
  ms?: number;
}

/** The job this tab looks at. */
export const jobView = new Observable<JobView | null>(null);
export const queueView = new Observable<QueueState | null>(null);
/** The live connection: null until it first connects (or fails to), then whether it is up. */
export const socketConnected = new Observable<boolean | null>(null);
/** Jobs submitted from this tab. */
export const myJobs = new Observable<ReadonlySet<string>>(new Set());
/** Jobs that finished while this tab was open (any tab's), newest first. */
export const finishedJobs = new Observable<JobView[]>([]);

const CACHED_BADGE_MS = 4000;
const FINISHED_KEPT = 8;

type EventName = keyof ServerToClientEvents;
type Payload<E extends EventName> = Parameters<ServerToClientEvents[E]>[0];
interface Logged {
  name: EventName;
  payload: { jobId: string };
  at: number;
}

const ACTIVE: ReadonlySet<JobState> = new Set(['queued', 'running']);
export const isActive = (j: { state: JobState } | null | undefined): boolean => Boolean(j && ACTIVE.has(j.state));

export interface TrackerHooks {
  notify(kind: 'error' | 'info', message: string): void;
  /** Any job ended (this tab's or another's) or jobs left the history (the gallery reads the server's history). */
  onHistoryChanged(): void;
  /** Is this (another tab's) graph the one on the canvas? Then its run paints the nodes here too. */
  graphOnCanvas(graph: Graph): boolean;
}

export class JobTracker {
  private socket: Socket<ServerToClientEvents, ClientToServerEvents>;
  private mine = new Set<string>();
  /** Names of the jobs seen in the queue, by id. */
  private titles = new Map<string, string>();
  /** Jobs whose node events paint the canvas. */
  private painting = new Set<string>();
  /** Events of jobs that are not ours (yet: they can arrive before the POST /api/jobs answer does). */
  private logs = new Map<string, Logged[]>();
  private cachedTimers = new Map<string, ReturnType<typeof setTimeout>>();
  /** The job picked in the Queue panel: looked at until it ends. */
  private pinned: string | null = null;

  constructor(private readonly hooks: TrackerHooks) {
    const token = accessToken();
    this.socket = io({ path: '/socket.io', transports: ['websocket', 'polling'], ...(token ? { auth: { token } } : {}) });
    this.socket.on('connect', () => socketConnected.set(true));
    this.socket.on('disconnect', () => socketConnected.set(false));
    this.socket.on('connect_error', () => socketConnected.set(false));
    this.socket.on('queue', (q) => this.onQueue(q));
    this.socket.on('history:removed', () => this.hooks.onHistoryChanged());
    const names: EventName[] = [
      'job:queued',
      'job:started',
      'node:started',
      'node:progress',
      'node:preview',
      'node:warning',
      'node:done',
      'job:done',
      'job:failed',
      'job:cancelled',
      'job:requeued',
    ];
    for (const name of names) this.socket.on(name, ((payload: { jobId: string }) => this.receive(name, payload)) as never);
  }

  /** Starts following a job we just submitted; replays anything that arrived first. */
  follow(job: JobSummary): void {
    this.mine.add(job.id);
    myJobs.set(new Set(this.mine));
    this.painting.add(job.id);
    this.socket.emit('job:subscribe', job.id);
    const current = jobView.get();
    if (current?.id === job.id) this.patchJob(job.id, { mine: true });
    else if (!isActive(current) || !current!.mine) this.look({ id: job.id, state: 'queued', mine: true, position: job.position, title: job.title });
    // What arrived before the POST answer: the job view goes through it again, now as ours.
    this.replay(job.id, true);
    const q = queueView.get();
    if (q) this.onQueue(q);
  }

  /** The Queue panel picked a job: look at it until it ends. */
  watch(jobId: string): void {
    this.pinned = jobId;
    const summary = this.summaryOf(jobId);
    this.look({ id: jobId, state: summary?.state ?? 'queued', mine: this.mine.has(jobId), title: summary?.title });
    this.applySummaries();
    if (!this.mine.has(jobId)) void this.paintIfOnCanvas(jobId);
  }

  activeJobId(): string | null {
    const j = jobView.get();
    return j && isActive(j) ? j.id : null;
  }

  /** Another graph was opened: no job followed so far paints its nodes. */
  detachNodes(): void {
    this.painting.clear();
  }

  close(): void {
    this.socket.close();
    for (const t of this.cachedTimers.values()) clearTimeout(t);
    this.cachedTimers.clear();
  }

  private summaryOf(id: string): JobSummary | undefined {
    const q = queueView.get();
    return q?.active.find((j) => j.id === id) ?? (q?.running?.id === id ? q.running : q?.pending.find((j) => j.id === id));
  }

  private look(view: JobView): void {
    jobView.set(view);
  }

  private patchJob(jobId: string, patch: Partial<JobView>): void {
    const j = jobView.get();
    if (j && j.id === jobId) jobView.set({ ...j, ...patch });
  }

  /** Whether this tab should turn to `jobId` (it started, or runs and nothing here is going on). */
  private wantsToLook(jobId: string): boolean {
    const current = jobView.get();
    if (current?.id === jobId) return false;
    if (this.pinned && this.pinned !== jobId && isActive(this.summaryOf(this.pinned) ?? null)) return false;
    if (this.mine.has(jobId)) return !(current && current.mine && current.state === 'running');
    return !(current && isActive(current) && current.mine);
  }

  private onQueue(q: QueueState): void {
    queueView.set(q);
    // Kept past the job's end: its line in the finished list keeps its name.
    for (const j of [...q.active, ...q.pending]) if (j.title) this.titles.set(j.id, j.title);
    const running = q.running;
    if (running && this.wantsToLook(running.id) && !this.mine.has(running.id)) {
      this.look({ id: running.id, state: 'running', mine: false, title: running.title });
      void this.paintIfOnCanvas(running.id);
    }
    this.applySummaries();
  }

  /** Position, progress and estimate of the job looked at, from the latest queue state. */
  private applySummaries(): void {
    const j = jobView.get();
    if (!j || !isActive(j)) return;
    const s = this.summaryOf(j.id);
    if (!s) return;
    const now = Date.now();
    const p = s.progress;
    this.patchJob(j.id, {
      state: s.state === 'running' ? 'running' : j.state,
      position: s.position,
      title: s.title ?? j.title,
      etaAt: s.etaMs !== undefined ? now + s.etaMs : undefined,
      ...(s.elapsedMs !== undefined ? { startedAt: now - s.elapsedMs } : {}),
      ...(p ? { nodesDone: p.nodesDone, nodesTotal: p.nodesTotal } : {}),
      // Node events are finer; the queue state speaks for jobs whose node events this tab skipped.
      ...(p?.nodeId && (!j.currentNode || j.currentNode === p.nodeId || !this.painting.has(j.id))
        ? { currentNode: p.nodeId, currentTitle: p.nodeTitle, ...(p.steps ? { step: p.step, total: p.steps } : {}) }
        : {}),
    });
  }

  /** Another tab's job paints here when its graph is the one on the canvas. */
  private async paintIfOnCanvas(jobId: string): Promise<void> {
    if (this.painting.has(jobId)) return;
    const detail = await api.job(jobId).catch(() => null);
    if (!detail?.graph || !isActive(detail.job) || !this.hooks.graphOnCanvas(detail.graph)) return;
    this.painting.add(jobId);
    this.replay(jobId, false);
  }

  /** Applies what was logged of a job to the nodes (and to the job view, when `view`). */
  private replay(jobId: string, view: boolean): void {
    const log = this.logs.get(jobId) ?? [];
    this.logs.delete(jobId);
    for (const e of log) this.apply(e.name, e.payload, { paint: true, view });
  }

  private receive(name: EventName, payload: { jobId: string }): void {
    if (name === 'job:done' || name === 'job:failed' || name === 'job:cancelled') this.hooks.onHistoryChanged();
    if (!this.mine.has(payload.jobId) && !this.painting.has(payload.jobId)) {
      // Kept for a later follow() or paint; a node's earlier preview frames are not needed then.
      const now = Date.now();
      const log = this.logs.get(payload.jobId) ?? [];
      const nodeId = (payload as { nodeId?: string }).nodeId;
      const kept = name === 'node:preview' ? log.filter((e) => !(e.name === 'node:preview' && (e.payload as { nodeId?: string }).nodeId === nodeId)) : log;
      this.logs.set(payload.jobId, [...kept, { name, payload, at: now }].slice(-3000));
      for (const [id, l] of this.logs) if (now - (l.at(-1)?.at ?? 0) > 60_000) this.logs.delete(id);
    }
    this.apply(name, payload, { paint: this.painting.has(payload.jobId), view: true });
  }

  private apply(name: EventName, payload: { jobId: string }, { paint, view }: { paint: boolean; view: boolean }): void {
    const jobId = payload.jobId;
    switch (name) {
      case 'job:queued': {
        const e = payload as Payload<'job:queued'>;
        if (view) this.patchJob(jobId, { position: e.position });
        break;
      }
      case 'job:started': {
        const e = payload as Payload<'job:started'>;
        if (paint) nodeRuntime.resetRun(e.nodes, 'pending');
        if (!view) break;
        if (this.wantsToLook(jobId)) {
          this.look({ id: jobId, state: 'running', mine: this.mine.has(jobId), title: this.summaryOf(jobId)?.title });
          if (!this.mine.has(jobId)) void this.paintIfOnCanvas(jobId);
        }
        this.patchJob(jobId, { state: 'running', position: 0, startedAt: Date.now(), nodesDone: 0, nodesTotal: e.nodes.length });
        break;
      }
      case 'node:started': {
        const e = payload as Payload<'node:started'>;
        if (paint) nodeRuntime.update(e.nodeId, { status: 'running', progress: undefined, error: undefined, result: undefined, warnings: [] });
        if (view) this.patchJob(jobId, { currentNode: e.nodeId, currentTitle: undefined, step: undefined, total: undefined });
        break;
      }
      case 'node:progress': {
        const e = payload as Payload<'node:progress'>;
        if (paint) nodeRuntime.update(e.nodeId, { status: 'running', progress: { step: e.step, total: e.total } });
        if (view) this.patchJob(jobId, { currentNode: e.nodeId, step: e.step, total: e.total });
        break;
      }
      case 'node:preview': {
        const e = payload as Payload<'node:preview'>;
        if (!paint) break;
        const url = URL.createObjectURL(new Blob([e.data as unknown as BlobPart], { type: e.mime || 'image/png' }));
        nodeRuntime.update(e.nodeId, { previewUrl: url });
        break;
      }
      case 'node:warning': {
        const e = payload as Payload<'node:warning'>;
        if (paint) nodeRuntime.update(e.nodeId, (s) => (s.warnings.includes(e.message) ? {} : { warnings: [...s.warnings, e.message] }));
        break;
      }
      case 'node:done': {
        const e = payload as Payload<'node:done'>;
        if (view) {
          const j = jobView.get();
          if (j?.id === jobId) this.patchJob(jobId, { nodesDone: (j.nodesDone ?? 0) + 1 });
        }
        if (!paint) break;
        nodeRuntime.update(e.nodeId, {
          status: e.cached ? 'cached' : 'done',
          progress: undefined,
          // A node from the cache took no time of this run: once its "cached" badge fades, no "0 ms".
          ms: e.cached ? undefined : e.ms,
          ...(e.result ? { result: e.result } : {}),
          ...(e.result?.warnings?.length ? { warnings: e.result.warnings } : {}),
        });
        if (e.cached) this.fadeCached(e.nodeId);
        break;
      }
      case 'job:done': {
        const e = payload as Payload<'job:done'>;
        if (paint) for (const [nodeId, result] of Object.entries(e.results ?? {})) nodeRuntime.update(nodeId, { result });
        if (view) this.finished(jobId, { state: 'done', ms: e.ms, message: `Finished in ${(e.ms / 1000).toFixed(1)} s` });
        break;
      }
      case 'job:failed': {
        const e = payload as Payload<'job:failed'>;
        if (paint) {
          if (e.nodeId) nodeRuntime.update(e.nodeId, { status: 'failed', error: e.message, progress: undefined });
          this.settleRunning('idle');
        }
        if (!view) break;
        this.finished(jobId, { state: 'failed', message: e.message, failedNode: e.nodeId });
        if (this.mine.has(jobId)) this.hooks.notify('error', e.nodeId ? `Run failed at node “${e.nodeId}”: ${e.message}` : `Run failed: ${e.message}`);
        break;
      }
      case 'job:requeued': {
        // Its worker stopped (or the server restarted): it waits in line again and will start over.
        const e = payload as Payload<'job:requeued'>;
        if (paint) this.settleRunning('idle');
        if (!view) break;
        this.patchJob(jobId, {
          state: 'queued',
          currentNode: undefined,
          currentTitle: undefined,
          step: undefined,
          total: undefined,
          startedAt: undefined,
          message: `Restarting: ${e.reason}`,
        });
        if (this.mine.has(jobId)) this.hooks.notify('info', `The run will start again: ${e.reason}.`);
        break;
      }
      case 'job:cancelled': {
        if (paint) this.settleRunning('cancelled');
        if (!view) break;
        this.finished(jobId, { state: 'cancelled', message: 'Cancelled' });
        if (this.mine.has(jobId)) this.hooks.notify('info', 'Run cancelled.');
        break;
      }
    }
  }

  private finished(jobId: string, patch: Partial<JobView>): void {
    const end = { currentNode: undefined, currentTitle: undefined, step: undefined, total: undefined, position: undefined, etaAt: undefined, ...patch };
    this.patchJob(jobId, end);
    if (this.pinned === jobId) this.pinned = null;
    const known = jobView.get()?.id === jobId ? jobView.get()! : { id: jobId, state: patch.state ?? 'done', mine: this.mine.has(jobId) };
    const title = known.title ?? this.titles.get(jobId);
    this.titles.delete(jobId);
    finishedJobs.set([{ ...known, ...end, ...(title ? { title } : {}) }, ...finishedJobs.get().filter((j) => j.id !== jobId)].slice(0, FINISHED_KEPT));
    this.painting.delete(jobId);
  }

  /** After a failure or cancel, nodes still marked running/waiting go back to rest. */
  private settleRunning(to: 'idle' | 'cancelled'): void {
    for (const id of runningIds()) nodeRuntime.update(id, { status: to, progress: undefined });
  }

  private fadeCached(nodeId: string): void {
    clearTimeout(this.cachedTimers.get(nodeId));
    this.cachedTimers.set(
      nodeId,
      setTimeout(() => {
        if (nodeRuntime.get(nodeId).status === 'cached') nodeRuntime.update(nodeId, { status: 'done' });
      }, CACHED_BADGE_MS),
    );
  }
}

/** Ids of nodes whose status is running or pending; registered by the app (it knows the graph). */
let runningIds: () => string[] = () => [];
export function setNodeIdSource(all: () => string[]): void {
  runningIds = () => all().filter((id) => ['running', 'pending'].includes(nodeRuntime.get(id).status));
}

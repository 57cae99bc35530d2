/**
 * Every job of the server, as this tab sees it over socket.io. The tab "looks at" one job (its own
 * running or next one; else whatever the server runs, from any tab; or the one picked in the Queue
 * panel) and shows its progress in the toolbar. A job's events paint the nodes of one open graph: the
 * graph tab it was run from, or (another browser tab's job) a graph tab that holds the same graph.
 */
import { io, type Socket } from 'socket.io-client';
import type { ClientToServerEvents, JobState, JobSummary, QueueState, ServerToClientEvents } from '../../../server/protocol/events.ts';
import type { Graph } from '../../../server/protocol/graph.ts';
import { accessToken } from '../access-token.ts';
import { api } from '../api.ts';
import { Observable, type NodeRuntimeStore } from '../runtime.ts';

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

/** What the studio knows of the server's jobs: one per studio (see studio-store.ts), read by the toolbar and the Queue panel. */
export class JobsState {
  /** The job this tab looks at. */
  readonly jobView = new Observable<JobView | null>(null);
  readonly queueView = new Observable<QueueState | null>(null);
  /** The live connection: null until it first connects (or fails to), then whether it is up. */
  readonly socketConnected = new Observable<boolean | null>(null);
  /** Jobs submitted from this tab. */
  readonly myJobs = new Observable<ReadonlySet<string>>(new Set());
  /** Jobs that finished while this tab was open (any tab's), newest first. */
  readonly finishedJobs = new Observable<JobView[]>([]);
}

/** An open graph whose nodes a job's events paint: its run states, and what it holds now. */
export interface PaintTarget {
  runtime: NodeRuntimeStore;
  /** Ids of the nodes on its canvas now. */
  nodeIds(): string[];
  /** Is this (another tab's) graph the one it holds? Then that graph's run paints it too. */
  holds(graph: Graph): boolean;
}

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
}

export class JobTracker {
  private socket: Socket<ServerToClientEvents, ClientToServerEvents>;
  private mine = new Set<string>();
  /** Names of the jobs seen in the queue, by id. */
  private titles = new Map<string, string>();
  /** Jobs whose node events paint an open graph, with that graph. */
  private painting = new Map<string, PaintTarget>();
  /** The open graphs (graph tabs): where another tab's job may paint. */
  private targets = new Set<PaintTarget>();
  /** Events of jobs that are not ours (yet: they can arrive before the POST /api/jobs answer does). */
  private logs = new Map<string, Logged[]>();
  private cachedTimers = new Map<string, ReturnType<typeof setTimeout>>();
  /** The job picked in the Queue panel: looked at until it ends. */
  private pinned: string | null = null;

  constructor(
    private readonly hooks: TrackerHooks,
    private readonly state: JobsState,
  ) {
    const token = accessToken();
    this.socket = io({ path: '/socket.io', transports: ['websocket', 'polling'], ...(token ? { auth: { token } } : {}) });
    const connected = state.socketConnected;
    this.socket.on('connect', () => connected.set(true));
    this.socket.on('disconnect', () => connected.set(false));
    this.socket.on('connect_error', () => connected.set(false));
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

  /** An open graph another tab's job may paint; returns how to take it back (its tab closed). */
  register(target: PaintTarget): () => void {
    this.targets.add(target);
    return () => {
      this.targets.delete(target);
      this.detachNodes(target);
    };
  }

  /** Starts following a job we just submitted from the graph `target`; replays anything that arrived first. */
  follow(job: JobSummary, target: PaintTarget): void {
    this.mine.add(job.id);
    this.state.myJobs.set(new Set(this.mine));
    this.painting.set(job.id, target);
    this.socket.emit('job:subscribe', job.id);
    const current = this.state.jobView.get();
    if (current?.id === job.id) this.patchJob(job.id, { mine: true });
    else if (!isActive(current) || !current!.mine) this.look({ id: job.id, state: 'queued', mine: true, position: job.position, title: job.title });
    // What arrived before the POST answer: the job view goes through it again, now as ours.
    this.replay(job.id, true);
    const q = this.state.queueView.get();
    if (q) this.onQueue(q);
  }

  /** The Queue panel picked a job: look at it until it ends. */
  watch(jobId: string): void {
    this.pinned = jobId;
    const summary = this.summaryOf(jobId);
    this.look({ id: jobId, state: summary?.state ?? 'queued', mine: this.mine.has(jobId), title: summary?.title });
    this.applySummaries();
    if (!this.mine.has(jobId)) void this.paintIfOpen(jobId);
  }

  activeJobId(): string | null {
    const j = this.state.jobView.get();
    return j && isActive(j) ? j.id : null;
  }

  /** Another graph replaced `target`'s: no job followed so far paints its nodes. */
  detachNodes(target: PaintTarget): void {
    for (const [id, t] of this.painting) if (t === target) this.painting.delete(id);
  }

  close(): void {
    this.socket.close();
    for (const t of this.cachedTimers.values()) clearTimeout(t);
    this.cachedTimers.clear();
  }

  private summaryOf(id: string): JobSummary | undefined {
    const q = this.state.queueView.get();
    return q?.active.find((j) => j.id === id) ?? (q?.running?.id === id ? q.running : q?.pending.find((j) => j.id === id));
  }

  private look(view: JobView): void {
    this.state.jobView.set(view);
  }

  private patchJob(jobId: string, patch: Partial<JobView>): void {
    const j = this.state.jobView.get();
    if (j && j.id === jobId) this.state.jobView.set({ ...j, ...patch });
  }

  /** Whether this tab should turn to `jobId` (it started, or runs and nothing here is going on). */
  private wantsToLook(jobId: string): boolean {
    const current = this.state.jobView.get();
    if (current?.id === jobId) return false;
    if (this.pinned && this.pinned !== jobId && isActive(this.summaryOf(this.pinned) ?? null)) return false;
    if (this.mine.has(jobId)) return !(current && current.mine && current.state === 'running');
    return !(current && isActive(current) && current.mine);
  }

  private onQueue(q: QueueState): void {
    this.state.queueView.set(q);
    // Kept past the job's end: its line in the finished list keeps its name.
    for (const j of [...q.active, ...q.pending]) if (j.title) this.titles.set(j.id, j.title);
    const running = q.running;
    if (running && this.wantsToLook(running.id) && !this.mine.has(running.id)) {
      this.look({ id: running.id, state: 'running', mine: false, title: running.title });
      void this.paintIfOpen(running.id);
    }
    this.applySummaries();
  }

  /** Position, progress and estimate of the job looked at, from the latest queue state. */
  private applySummaries(): void {
    const j = this.state.jobView.get();
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

  /** Another tab's job paints here when its graph is the one an open graph tab holds. */
  private async paintIfOpen(jobId: string): Promise<void> {
    if (this.painting.has(jobId)) return;
    const detail = await api.job(jobId).catch(() => null);
    if (!detail?.graph || !isActive(detail.job)) return;
    const target = [...this.targets].find((t) => t.holds(detail.graph));
    if (!target) return;
    this.painting.set(jobId, target);
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

  /** One event of a job: on the nodes of the graph it paints (when `paint`), and on the job view (when `view`). */
  private apply(name: EventName, payload: { jobId: string }, { paint, view }: { paint: boolean; view: boolean }): void {
    const target = paint ? this.painting.get(payload.jobId) : undefined;
    if (target) this.paintNodes(target, name, payload);
    if (view) this.updateView(name, payload);
  }

  /** What an event shows on the nodes of one graph. */
  private paintNodes(target: PaintTarget, name: EventName, payload: { jobId: string }): void {
    const runtime = target.runtime;
    switch (name) {
      case 'job:started':
        runtime.resetRun((payload as Payload<'job:started'>).nodes, 'pending');
        break;
      case 'node:started':
        runtime.update((payload as Payload<'node:started'>).nodeId, {
          status: 'running',
          progress: undefined,
          error: undefined,
          result: undefined,
          warnings: [],
        });
        break;
      case 'node:progress': {
        const e = payload as Payload<'node:progress'>;
        runtime.update(e.nodeId, { status: 'running', progress: { step: e.step, total: e.total } });
        break;
      }
      case 'node:preview': {
        const e = payload as Payload<'node:preview'>;
        runtime.update(e.nodeId, { previewUrl: URL.createObjectURL(new Blob([e.data as unknown as BlobPart], { type: e.mime || 'image/png' })) });
        break;
      }
      case 'node:warning': {
        const e = payload as Payload<'node:warning'>;
        runtime.update(e.nodeId, (s) => (s.warnings.includes(e.message) ? {} : { warnings: [...s.warnings, e.message] }));
        break;
      }
      case 'node:done': {
        const e = payload as Payload<'node:done'>;
        runtime.update(e.nodeId, {
          status: e.cached ? 'cached' : 'done',
          progress: undefined,
          // A node from the cache took no time of this run: once its "cached" badge fades, no "0 ms".
          ms: e.cached ? undefined : e.ms,
          ...(e.result ? { result: e.result } : {}),
          ...(e.result?.warnings?.length ? { warnings: e.result.warnings } : {}),
        });
        if (e.cached) this.fadeCached(runtime, e.nodeId);
        break;
      }
      case 'job:done':
        for (const [nodeId, result] of Object.entries((payload as Payload<'job:done'>).results ?? {})) runtime.update(nodeId, { result });
        break;
      case 'job:failed': {
        const e = payload as Payload<'job:failed'>;
        if (e.nodeId) runtime.update(e.nodeId, { status: 'failed', error: e.message, progress: undefined });
        settleRunning(target, 'idle');
        break;
      }
      case 'job:requeued':
        settleRunning(target, 'idle');
        break;
      case 'job:cancelled':
        settleRunning(target, 'cancelled');
        break;
    }
  }

  /** What an event changes in the job this tab looks at (and in the list of finished jobs). */
  private updateView(name: EventName, payload: { jobId: string }): void {
    const jobId = payload.jobId;
    const mine = this.mine.has(jobId);
    switch (name) {
      case 'job:queued':
        this.patchJob(jobId, { position: (payload as Payload<'job:queued'>).position });
        break;
      case 'job:started':
        if (this.wantsToLook(jobId)) {
          this.look({ id: jobId, state: 'running', mine, title: this.summaryOf(jobId)?.title });
          if (!mine) void this.paintIfOpen(jobId);
        }
        this.patchJob(jobId, {
          state: 'running',
          position: 0,
          startedAt: Date.now(),
          nodesDone: 0,
          nodesTotal: (payload as Payload<'job:started'>).nodes.length,
        });
        break;
      case 'node:started':
        this.patchJob(jobId, { currentNode: (payload as Payload<'node:started'>).nodeId, currentTitle: undefined, step: undefined, total: undefined });
        break;
      case 'node:progress': {
        const e = payload as Payload<'node:progress'>;
        this.patchJob(jobId, { currentNode: e.nodeId, step: e.step, total: e.total });
        break;
      }
      case 'node:done': {
        const j = this.state.jobView.get();
        if (j?.id === jobId) this.patchJob(jobId, { nodesDone: (j.nodesDone ?? 0) + 1 });
        break;
      }
      case 'job:done': {
        const ms = (payload as Payload<'job:done'>).ms;
        this.finished(jobId, { state: 'done', ms, message: `Finished in ${(ms / 1000).toFixed(1)} s` });
        break;
      }
      case 'job:failed': {
        const e = payload as Payload<'job:failed'>;
        this.finished(jobId, { state: 'failed', message: e.message, failedNode: e.nodeId });
        if (mine) this.hooks.notify('error', e.nodeId ? `Run failed at node “${e.nodeId}”: ${e.message}` : `Run failed: ${e.message}`);
        break;
      }
      case 'job:requeued': {
        // Its worker stopped (or the server restarted): it waits in line again and will start over.
        const reason = (payload as Payload<'job:requeued'>).reason;
        this.patchJob(jobId, {
          state: 'queued',
          currentNode: undefined,
          currentTitle: undefined,
          step: undefined,
          total: undefined,
          startedAt: undefined,
          message: `Restarting: ${reason}`,
        });
        if (mine) this.hooks.notify('info', `The run will start again: ${reason}.`);
        break;
      }
      case 'job:cancelled':
        this.finished(jobId, { state: 'cancelled', message: 'Cancelled' });
        if (mine) this.hooks.notify('info', 'Run cancelled.');
        break;
      default:
        break;
    }
  }

  private finished(jobId: string, patch: Partial<JobView>): void {
    const end = { currentNode: undefined, currentTitle: undefined, step: undefined, total: undefined, position: undefined, etaAt: undefined, ...patch };
    this.patchJob(jobId, end);
    if (this.pinned === jobId) this.pinned = null;
    const { jobView, finishedJobs } = this.state;
    const known = jobView.get()?.id === jobId ? jobView.get()! : { id: jobId, state: patch.state ?? 'done', mine: this.mine.has(jobId) };
    const title = known.title ?? this.titles.get(jobId);
    this.titles.delete(jobId);
    finishedJobs.set([{ ...known, ...end, ...(title ? { title } : {}) }, ...finishedJobs.get().filter((j) => j.id !== jobId)].slice(0, FINISHED_KEPT));
    this.painting.delete(jobId);
  }

  private fadeCached(runtime: NodeRuntimeStore, nodeId: string): void {
    clearTimeout(this.cachedTimers.get(nodeId));
    this.cachedTimers.set(
      nodeId,
      setTimeout(() => {
        if (runtime.get(nodeId).status === 'cached') runtime.update(nodeId, { status: 'done' });
      }, CACHED_BADGE_MS),
    );
  }
}

/** After a failure or cancel, nodes still marked running/waiting go back to rest. */
function settleRunning(target: PaintTarget, to: 'idle' | 'cancelled'): void {
  const { runtime } = target;
  for (const id of target.nodeIds()) if (['running', 'pending'].includes(runtime.get(id).status)) runtime.update(id, { status: to, progress: undefined });
}

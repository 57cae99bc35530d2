/**
 * Follows the jobs this tab submitted over socket.io and turns their events into per-node runtime
 * state (progress, previews, results, warnings, failures) and an app-level job view; tells the app when
 * any tab's job ends or the history changes (the gallery reads the server's history).
 */
import { io, type Socket } from 'socket.io-client';
import type { ClientToServerEvents, JobState, QueueState, ServerToClientEvents } from '../../../server/protocol/events.ts';
import { accessToken } from '../access-token.ts';
import { nodeRuntime, Observable } from '../runtime.ts';

export interface JobView {
  id: string;
  state: JobState;
  /** 0 = running now, 1 = next in line, ... */
  position?: number;
  message?: string;
  failedNode?: string;
  /** Node currently computing, with its progress. */
  currentNode?: string;
  step?: number;
  total?: number;
}

export const jobView = new Observable<JobView | null>(null);
export const queueView = new Observable<QueueState | null>(null);
export const socketConnected = new Observable<boolean>(false);

const CACHED_BADGE_MS = 4000;

type EventName = keyof ServerToClientEvents;
type Payload<E extends EventName> = Parameters<ServerToClientEvents[E]>[0];
interface Buffered {
  name: EventName;
  payload: { jobId: string };
  at: number;
}

export class JobTracker {
  private socket: Socket<ServerToClientEvents, ClientToServerEvents>;
  private mine = new Set<string>();
  /** Events of jobs not known yet: they can arrive before the POST /api/jobs answer does. */
  private early: Buffered[] = [];
  private cachedTimers = new Map<string, ReturnType<typeof setTimeout>>();
  /** Jobs of a graph that is no longer open: they update the job view, never the nodes. */
  private detached = new Set<string>();

  constructor(
    private readonly notify: (kind: 'error' | 'info', message: string) => void,
    /** Any job ended (this tab's or another's) or jobs left the history. */
    private readonly onHistoryChanged: () => void = () => undefined,
  ) {
    const token = accessToken();
    this.socket = io({ path: '/socket.io', transports: ['websocket', 'polling'], ...(token ? { auth: { token } } : {}) });
    this.socket.on('connect', () => socketConnected.set(true));
    this.socket.on('disconnect', () => socketConnected.set(false));
    this.socket.on('queue', (q) => {
      queueView.set(q);
      this.updatePosition(q);
    });
    this.socket.on('history:removed', () => this.onHistoryChanged());
    const names: EventName[] = [
      'job:queued', 'job:started', 'node:started', 'node:progress', 'node:preview', 'node:warning',
      'node:done', 'job:done', 'job:failed', 'job:cancelled', 'job:requeued',
    ];
    for (const name of names) {
      this.socket.on(name, ((payload: { jobId: string }) => this.receive(name, payload)) as never);
    }
  }

  /** Starts following a job we just submitted; replays anything that arrived first. */
  follow(jobId: string, position?: number): void {
    this.mine.add(jobId);
    this.socket.emit('job:subscribe', jobId);
    jobView.set({ id: jobId, state: 'queued', position });
    const replay = this.early.filter((e) => e.payload.jobId === jobId);
    this.early = this.early.filter((e) => e.payload.jobId !== jobId);
    for (const e of replay) this.apply(e.name, e.payload);
    const q = queueView.get();
    if (q) this.updatePosition(q);
  }

  activeJobId(): string | null {
    const j = jobView.get();
    return j && (j.state === 'queued' || j.state === 'running') ? j.id : null;
  }

  /** Another graph was opened: the jobs followed so far no longer belong to the nodes shown. */
  detachNodes(): void {
    for (const id of this.mine) this.detached.add(id);
  }

  close(): void {
    this.socket.close();
    for (const t of this.cachedTimers.values()) clearTimeout(t);
    this.cachedTimers.clear();
  }

  private receive(name: EventName, payload: { jobId: string }): void {
    if (name === 'job:done' || name === 'job:failed' || name === 'job:cancelled') this.onHistoryChanged();
    if (this.mine.has(payload.jobId)) {
      this.apply(name, payload);
      return;
    }
    const now = Date.now();
    this.early = this.early.filter((e) => now - e.at < 10_000).slice(-2000);
    this.early.push({ name, payload, at: now });
  }

  private updatePosition(q: QueueState): void {
    const j = jobView.get();
    if (!j || (j.state !== 'queued' && j.state !== 'running')) return;
    if (q.running?.id === j.id) {
      if (j.position !== 0) jobView.set({ ...j, position: 0 });
      return;
    }
    const i = q.pending.findIndex((p) => p.id === j.id);
    if (i >= 0 && j.position !== i + 1) jobView.set({ ...j, position: i + 1, state: 'queued' });
  }

  private patchJob(jobId: string, patch: Partial<JobView>): void {
    const j = jobView.get();
    if (j && j.id === jobId) jobView.set({ ...j, ...patch });
  }

  private apply(name: EventName, payload: { jobId: string }): void {
    const paint = !this.detached.has(payload.jobId);
    switch (name) {
      case 'job:queued': {
        const e = payload as Payload<'job:queued'>;
        this.patchJob(e.jobId, { position: e.position });
        break;
      }
      case 'job:started': {
        const e = payload as Payload<'job:started'>;
        if (paint) nodeRuntime.resetRun(e.nodes, 'pending');
        this.patchJob(e.jobId, { state: 'running', position: 0 });
        break;
      }
      case 'node:started': {
        const e = payload as Payload<'node:started'>;
        if (paint) nodeRuntime.update(e.nodeId, { status: 'running', progress: undefined, error: undefined, result: undefined, warnings: [] });
        this.patchJob(e.jobId, { currentNode: e.nodeId, step: undefined, total: undefined });
        break;
      }
      case 'node:progress': {
        const e = payload as Payload<'node:progress'>;
        if (paint) nodeRuntime.update(e.nodeId, { status: 'running', progress: { step: e.step, total: e.total } });
        this.patchJob(e.jobId, { currentNode: e.nodeId, step: e.step, total: e.total });
        break;
      }
      case 'node:preview': {
        const e = payload as Payload<'node:preview'>;
        if (!paint) break;
        const bytes = e.data as unknown as BlobPart;
        const url = URL.createObjectURL(new Blob([bytes], { type: e.mime || 'image/png' }));
        nodeRuntime.update(e.nodeId, { previewUrl: url });
        break;
      }
      case 'node:warning': {
        const e = payload as Payload<'node:warning'>;
        if (!paint) break;
        nodeRuntime.update(e.nodeId, (s) => (s.warnings.includes(e.message) ? {} : { warnings: [...s.warnings, e.message] }));
        break;
      }
      case 'node:done': {
        const e = payload as Payload<'node:done'>;
        if (!paint) break;
        const patch = {
          status: e.cached ? ('cached' as const) : ('done' as const),
          progress: undefined,
          ms: e.ms,
          ...(e.result ? { result: e.result } : {}),
          ...(e.result?.warnings?.length ? { warnings: e.result.warnings } : {}),
        };
        nodeRuntime.update(e.nodeId, patch);
        if (e.cached) this.fadeCached(e.nodeId);
        break;
      }
      case 'job:done': {
        const e = payload as Payload<'job:done'>;
        for (const [nodeId, result] of Object.entries(e.results ?? {})) {
          if (paint) nodeRuntime.update(nodeId, { result });
        }
        this.patchJob(e.jobId, { state: 'done', currentNode: undefined, position: undefined, message: `Finished in ${(e.ms / 1000).toFixed(1)} s` });
        break;
      }
      case 'job:failed': {
        const e = payload as Payload<'job:failed'>;
        if (paint) {
          if (e.nodeId) nodeRuntime.update(e.nodeId, { status: 'failed', error: e.message, progress: undefined });
          this.settleRunning('idle');
        }
        this.patchJob(e.jobId, { state: 'failed', message: e.message, failedNode: e.nodeId, currentNode: undefined, position: undefined });
        this.notify('error', e.nodeId ? `Run failed at node “${e.nodeId}”: ${e.message}` : `Run failed: ${e.message}`);
        break;
      }
      case 'job:requeued': {
        // Its worker stopped (or the server restarted): it waits in line again and will start over.
        const e = payload as Payload<'job:requeued'>;
        if (paint) this.settleRunning('idle');
        this.patchJob(e.jobId, { state: 'queued', currentNode: undefined, step: undefined, total: undefined, message: `Restarting: ${e.reason}` });
        this.notify('info', `The run will start again: ${e.reason}.`);
        break;
      }
      case 'job:cancelled': {
        const e = payload as Payload<'job:cancelled'>;
        if (paint) this.settleRunning('cancelled');
        this.patchJob(e.jobId, { state: 'cancelled', message: 'Cancelled', currentNode: undefined, position: undefined });
        this.notify('info', 'Run cancelled.');
        break;
      }
    }
  }

  /** After a failure or cancel, nodes still marked running/waiting go back to rest. */
  private settleRunning(to: 'idle' | 'cancelled'): void {
    // The store has no index by status; the editor's nodes are few, so scan what it holds.
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

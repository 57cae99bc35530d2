/** Helpers for the API tests: a studio on a random loopback port, JSON requests, a socket event log. */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { io as connect, type Socket } from 'socket.io-client';
import { createStudio, type Studio, type StudioOptions } from '../../server/app.ts';
import type { ClientToServerEvents, ServerToClientEvents } from '../../server/protocol/events.ts';
import type { Graph } from '../../server/protocol/graph.ts';
import { testNodes } from './test-nodes.ts';
import { graphJson } from './test-nodes.ts';

export const silentLogger = { debug() {}, info() {}, warn() {}, error() {} };

export async function tempDir(prefix: string): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), `dualstyle-${prefix}-`));
}

export async function startTestStudio(dataDir: string, extra: Partial<StudioOptions> = {}): Promise<Studio> {
  return createStudio({
    dataDir,
    port: 0,
    catalog: testNodes,
    clientDir: path.join(dataDir, 'no-client-here'),
    logger: silentLogger,
    previewIntervalMs: 0,
    ...extra,
  });
}

export interface JsonResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

/**
 * A request as the studio's client makes it: with the X-Requested-With header that state-changing
 * requests need (see server/http/guard.ts). Tests of what a foreign page can send use fetch directly.
 */
export async function api<T = any>(
  studio: Pick<Studio, 'url'>,
  method: string,
  route: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<JsonResponse<T>> {
  const init: RequestInit = { method, headers: { 'x-requested-with': 'dualstyle', ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const res = await fetch(new URL(route, studio.url), init);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON: the test will say so */
  }
  return { status: res.status, body: parsed as T, headers: res.headers };
}

type EventName = keyof ServerToClientEvents;
export interface LoggedEvent {
  name: EventName;
  args: any;
}

/** A socket.io client that records every server event in arrival order. */
export class EventLog {
  readonly events: LoggedEvent[] = [];
  private waiters: { test: (e: LoggedEvent) => boolean; resolve: (e: LoggedEvent) => void }[] = [];

  private constructor(readonly socket: Socket<ServerToClientEvents, ClientToServerEvents>) {
    socket.onAny((name: EventName, args: unknown) => {
      const e = { name, args };
      this.events.push(e);
      this.waiters = this.waiters.filter((w) => {
        if (!w.test(e)) return true;
        w.resolve(e);
        return false;
      });
    });
  }

  static async connect(studio: Pick<Studio, 'url'>, auth?: { token: string }): Promise<EventLog> {
    const socket: Socket<ServerToClientEvents, ClientToServerEvents> = connect(studio.url, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      ...(auth ? { auth } : {}),
    });
    const log = new EventLog(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', (err) => reject(err));
    });
    return log;
  }

  forJob(jobId: string): LoggedEvent[] {
    return this.events.filter((e) => e.name !== 'queue' && e.args?.jobId === jobId);
  }

  /** Resolves with the first event (already seen or future) of one of the names that matches. */
  waitFor(name: EventName | readonly EventName[], match: (args: any) => boolean = () => true, timeoutMs = 60_000): Promise<LoggedEvent> {
    const names: readonly EventName[] = typeof name === 'string' ? [name] : name;
    const test = (e: LoggedEvent) => names.includes(e.name) && match(e.args);
    const seen = this.events.find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = {
        test,
        resolve: (e: LoggedEvent) => {
          clearTimeout(timer);
          resolve(e);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out waiting for ${names.join(' or ')}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /**
   * The first of job:done / job:failed / job:cancelled for a job. One waiter for the three names: a race
   * of three would leave the two losers waiting, each with a live timer.
   */
  waitForEnd(jobId: string, timeoutMs = 60_000): Promise<LoggedEvent> {
    return this.waitFor(['job:done', 'job:failed', 'job:cancelled'], (a) => a.jobId === jobId, timeoutMs);
  }

  close(): void {
    this.socket.close();
  }
}

type NodeSpec = { id: string; type: string; params?: Record<string, unknown> };

/** A graph from nodes and `from.output -> to.input` edge strings (graphJson with a terser edge notation). */
export function graphOf(nodes: NodeSpec[], edges: string[] = [], title?: string): Graph {
  const graph = graphJson(
    nodes,
    edges.map((e) => {
      const [from, to] = e.split('->').map((s) => s.trim()) as [string, string];
      return [...from.split('.'), ...to.split('.')] as [string, string, string, string];
    }),
  );
  return title ? { ...graph, meta: { title } } : graph;
}

/** number → slow counter → save (the value plus the steps): the pipeline most tests run. */
export function slowGraph(value: number, steps: number, delayMs = 5, title?: string): Graph {
  return graphOf(
    [
      { id: 'n', type: 'Constant', params: { value } },
      { id: 'slow', type: 'SlowCounter', params: { steps, delayMs } },
      { id: 'save', type: 'Save' },
    ],
    ['n.value -> slow.start', 'slow.count -> save.value'],
    title,
  );
}

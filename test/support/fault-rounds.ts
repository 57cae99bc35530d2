/**
 * Fault injection against real studio processes on loopback (`npm run faults`, and a CI-sized run in
 * test/fault-rounds.test.ts). Each round injects one kind of fault at a point drawn from a seeded
 * random generator, then checks what a user would: every job submitted so far ends exactly once (done
 * with its right result, or failed saying why), no file is cut or mixed, the server answers.
 *
 *   kill          jobs and graph saves under way, kill -9 at a random step of a job, just after one
 *                 ended, or in the middle of the saves; restarted at once on the same data folder
 *   disk-full     a server whose data folder is a small tmpfs, filled up: submissions and saves must
 *                 answer 507 (never 500), accepted jobs end, the access token stays out of the log, and
 *                 all works again once there is room (skipped where a tmpfs cannot be mounted)
 *   socket-flood  hundreds of raw WebSocket clients (silent, garbage, or storms of subscriptions) while a
 *                 job runs; afterwards the editor connects and jobs run
 *   redis         distributed mode (fault-redis.ts): Redis killed and started again mid-job
 *
 * One embedded studio (test catalog, test/support/studio-entry.ts) lives through all rounds on one data
 * folder, so its history and files carry every earlier round's jobs, and each check covers them all.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { api, EventLog, graphOf, slowGraph, tempDir } from './api-harness.ts';
import { kill9, startServer, stopAll } from './processes.ts';
import { FAULT_KINDS, flag, pick, random, type FaultKind, type FaultTally, type Round } from './fault-common.ts';
import { diskFullRound } from './fault-disk.ts';
import { DistributedStudio } from './fault-redis.ts';
import { openRawWebSocket, type RawWebSocket } from './raw-websocket.ts';

export interface FaultOptions {
  rounds: number;
  seed: number;
  /** The kinds, taken in turn round after round. */
  kinds: readonly FaultKind[];
  print(line: string): void;
}

type Server = Awaited<ReturnType<typeof startServer>>;

/** A job of the ledger: what its Save node must report. */
interface Expected {
  text: string;
}

/** The embedded studio that lives through the rounds, and every job submitted to it. */
class EmbeddedStudio {
  server: Server | undefined;
  private log: EventLog | undefined;
  readonly ledger = new Map<string, Expected>();
  /** job:done events seen per job, over every connection to every process of the run. */
  readonly doneEvents = new Map<string, number>();
  private readonly savedTitles = new Map<string, number>();
  /** Jobs already counted as lost or duplicated (each is counted once, not at every later check). */
  private readonly counted = new Set<string>();

  constructor(readonly dir: string) {}

  async ensure(): Promise<Server> {
    if (this.server && this.server.child.process.exitCode === null && this.server.child.process.signalCode === null) return this.server;
    this.server = await startServer(['--data', this.dir]);
    this.log = await EventLog.connect(this.server);
    this.log.socket.on('job:done', (e) => this.doneEvents.set(e.jobId, (this.doneEvents.get(e.jobId) ?? 0) + 1));
    return this.server;
  }

  async kill(): Promise<void> {
    this.log?.close();
    if (this.server) await kill9(this.server.child);
  }

  async submit(server: Server, value: number, steps: number, title: string): Promise<string> {
    const res = await api(server, 'POST', '/api/jobs', { graph: slowGraph(value, steps, 20, title) });
    if (res.status !== 202) throw new Error(`submitting a job answered ${res.status}: ${JSON.stringify(res.body)}`);
    this.ledger.set(res.body.job.id, { text: `value ${value + steps}` });
    return res.body.job.id as string;
  }

  /** A graph of about `kb` KiB whose node count says which version it is (so a mix or a cut shows). */
  graphVersion(title: string, kb: number) {
    const n = Math.ceil(kb / 20);
    this.savedTitles.set(title, n);
    return {
      ...graphOf(Array.from({ length: n }, (_, i) => ({ id: `pad${i}`, type: 'FromANewerVersion', params: { pad: 'x'.repeat(20 * 1024) } }))),
      meta: { title },
    };
  }

  /** Whether the saved graph `name` is one whole version that was saved. */
  async graphIntact(name: string): Promise<string | undefined> {
    let text: string;
    try {
      text = await fs.readFile(path.join(this.dir, 'graphs', `${name}.json`), 'utf8');
    } catch {
      return undefined; // never saved: nothing to be corrupt
    }
    try {
      const g = JSON.parse(text) as { meta?: { title?: string }; nodes: unknown[] };
      const want = this.savedTitles.get(g.meta?.title ?? '');
      return want === g.nodes.length ? undefined : `graphs/${name}.json is not a version that was saved (${g.meta?.title}, ${g.nodes.length} nodes)`;
    } catch (err) {
      return `graphs/${name}.json is not JSON (${text.length} bytes): ${(err as Error).message}`;
    }
  }

  /**
   * Waits until every job of the ledger has ended, and counts: lost (gone, or not ended in time),
   * duplicated (announced done more than once), corrupt (done with another result). Returns a summary.
   */
  async settle(server: Server, tally: FaultTally, timeoutMs = 180_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    const states = new Map<string, string>();
    for (const [id, expected] of this.ledger) {
      for (;;) {
        const res = await api(server, 'GET', `/api/jobs/${id}`);
        const state = res.status === 404 ? 'gone' : (res.body.job?.state as string);
        if (state === 'gone' || !['queued', 'running'].includes(state) || Date.now() > deadline) {
          states.set(id, state);
          if (state === 'done' && res.body.results?.save?.text !== expected.text) {
            flag(tally, 'corrupt', `job ${id} is done with ${JSON.stringify(res.body.results?.save?.text)}, not "${expected.text}"`);
          }
          if (state === 'failed' && !/the server stopped during this job/.test(res.body.error?.message ?? '')) {
            flag(tally, 'other', `job ${id} failed: ${res.body.error?.message}`);
          }
          break;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    let lost = 0;
    let duplicated = 0;
    for (const [id, state] of states) {
      if ((state === 'gone' || state === 'queued' || state === 'running') && !this.counted.has(`lost ${id}`)) {
        this.counted.add(`lost ${id}`);
        lost++;
        flag(tally, 'lost', `job ${id} was lost (${state})`);
      }
      if ((this.doneEvents.get(id) ?? 0) > 1 && !this.counted.has(id)) {
        duplicated++;
        this.counted.add(id);
        flag(tally, 'duplicated', `job ${id} was announced done ${this.doneEvents.get(id)} times`);
      }
    }
    const count = (s: string) => [...states.values()].filter((x) => x === s).length;
    return `${states.size} jobs so far: ${count('done')} done, ${count('failed')} given up, ${lost} lost, ${duplicated} duplicated`;
  }
}

/** Every result PNG decodes; no temporary file is left once a server started on the folder. */
export async function checkFiles(dir: string, tally: FaultTally): Promise<string> {
  const results = path.join(dir, 'results');
  const names = await fs.readdir(results).catch(() => [] as string[]);
  let bad = 0;
  for (const name of names) {
    if (name.endsWith('.tmp') || name.includes('.tmp-')) {
      bad++;
      flag(tally, 'corrupt', `results/${name}: a temporary file left after the restart`);
      continue;
    }
    try {
      await sharp(path.join(results, name)).stats();
    } catch (err) {
      bad++;
      flag(tally, 'corrupt', `results/${name} does not decode: ${(err as Error).message}`);
    }
  }
  return `${names.length} result files, ${bad} bad`;
}

async function killRound(studio: EmbeddedStudio, r: Round): Promise<void> {
  const server = await studio.ensure();
  // Listening before the jobs exist, so no event of theirs is missed.
  const log = await EventLog.connect(server);
  const jobs: { id: string; steps: number }[] = [];
  for (let i = 0, n = 2 + pick(r.rng, 3); i < n; i++) {
    const steps = 10 + pick(r.rng, 50);
    jobs.push({ id: await studio.submit(server, r.n * 100 + i, steps, `round ${r.n} job ${i}`), steps });
  }
  r.tally.jobs += jobs.length;
  const bodies = ['A', 'B'].map((v) => JSON.stringify({ graph: studio.graphVersion(`round ${r.n} version ${v}`, 300 + pick(r.rng, 900)) }));
  let saving = true;
  let saves = 0;
  const loop = (async () => {
    for (let i = 0; saving; i++) {
      const res = await fetch(new URL('/api/graphs/victim', server.url), {
        method: 'PUT',
        headers: { 'content-type': 'application/json', 'x-requested-with': 'dualstyle' },
        body: bodies[i % 2],
      }).catch(() => null);
      if (res?.ok) saves++;
      await res?.arrayBuffer().catch(() => undefined);
    }
  })();
  const k = pick(r.rng, jobs.length);
  const job = jobs[k]!;
  const where = pick(r.rng, 3);
  let point: string;
  try {
    if (where === 0) {
      const step = 1 + pick(r.rng, job.steps);
      await log.waitFor('node:progress', (a) => a.jobId === job.id && a.step >= step, 180_000);
      point = `at step ${step} of ${job.steps} of job ${k + 1}`;
    } else if (where === 1) {
      await log.waitForEnd(job.id, 180_000);
      point = `just after job ${k + 1} ended`;
    } else {
      const ms = 50 + pick(r.rng, 600);
      await new Promise((res) => setTimeout(res, ms));
      point = `${ms} ms into the graph saves`;
    }
  } finally {
    log.close();
  }
  await studio.kill();
  saving = false;
  await loop;
  const restarted = await studio.ensure();
  const requeued = /(\d+) jobs? that ran when the server stopped (?:was|were) re-queued/.exec(restarted.child.output())?.[1] ?? '0';
  const graph = await studio.graphIntact('victim');
  if (graph) flag(r.tally, 'corrupt', graph);
  const temps = (await fs.readdir(path.join(studio.dir, 'graphs'))).filter((f) => f.includes('.tmp'));
  if (temps.length > 0) flag(r.tally, 'corrupt', `graphs/: ${temps.join(', ')} left after the restart`, temps.length);
  const jobsLine = await studio.settle(restarted, r.tally);
  r.say(
    `kill -9 ${point} (${jobs.length} jobs, ${saves} graph saves); restarted: ${requeued} re-queued; ${jobsLine}; graph ${graph ? 'CORRUPT' : 'intact'}; ${await checkFiles(studio.dir, r.tally)}`,
  );
}

async function floodRound(studio: EmbeddedStudio, r: Round): Promise<void> {
  const server = await studio.ensure();
  const sockets: RawWebSocket[] = [];
  let refused = 0;
  let frames = 0;
  const wanted = 100 + pick(r.rng, 150);
  await Promise.all(
    Array.from({ length: wanted }, async (_, i) => {
      try {
        const ws = await openRawWebSocket(server.url);
        sockets.push(ws);
        if (i % 3 === 1) ws.send('\u0000not socket.io at all\u00ff'.repeat(1 + pick(r.rng, 50)));
        if (i % 3 === 2) {
          ws.send('40');
          for (let j = 0; j < 200; j++, frames++) ws.send(`42["job:subscribe","${r.n}-${i}-${j}-${'x'.repeat(pick(r.rng, 100))}"]`);
        }
      } catch {
        refused++;
      }
    }),
  );
  const id = await studio.submit(server, r.n * 100, 5 + pick(r.rng, 20), `round ${r.n} during the flood`);
  r.tally.jobs++;
  for (const ws of sockets) ws.close();
  await Promise.all(sockets.map((ws) => ws.closed));
  // The editor gets in again (the flood's slots are given back).
  let editor: EventLog | undefined;
  for (let tries = 0; !editor && tries < 100; tries++) {
    editor = await EventLog.connect(server).catch(() => undefined);
    if (!editor) await new Promise((res) => setTimeout(res, 200));
  }
  if (!editor) flag(r.tally, 'other', 'the editor could not connect after the socket flood');
  editor?.close();
  const health = await api(server, 'GET', '/api/health');
  if (health.status !== 200) flag(r.tally, 'other', `/api/health answered ${health.status} after the socket flood`);
  const jobsLine = await studio.settle(server, r.tally);
  r.say(
    `socket flood: ${sockets.length} raw WebSockets (${refused} refused), ${frames} subscribe frames, job ${id.slice(0, 8)} during it; ` +
      `editor ${editor ? 'connects' : 'CANNOT connect'} after; ${jobsLine}`,
  );
}

/** Runs the rounds; prints a line per round and returns the tally. */
export async function runFaults(opts: FaultOptions): Promise<FaultTally> {
  const tally: FaultTally = { rounds: 0, jobs: 0, lost: 0, duplicated: 0, corrupt: 0, other: 0, problems: [] };
  const rng = random(opts.seed);
  const dir = await tempDir('faults');
  const studio = new EmbeddedStudio(dir);
  const distributed = new DistributedStudio();
  try {
    for (let n = 1; n <= opts.rounds; n++) {
      const kind = opts.kinds[(n - 1) % opts.kinds.length]!;
      const before = tally.problems.length;
      const round: Round = { n, rng, tally, say: (line) => opts.print(`round ${n}/${opts.rounds} ${kind}: ${line}`) };
      try {
        if (kind === 'kill') await killRound(studio, round);
        else if (kind === 'socket-flood') await floodRound(studio, round);
        else if (kind === 'disk-full') await diskFullRound(round);
        else await distributed.round(round);
      } catch (err) {
        flag(tally, 'other', `round ${n} (${kind}) could not finish: ${(err as Error).stack ?? String(err)}`);
      }
      tally.rounds++;
      for (const p of tally.problems.slice(before)) opts.print(`  problem: ${p}`);
    }
  } finally {
    await stopAll();
    await distributed.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
  return tally;
}

/** The last line of a run. */
export function summary(t: FaultTally): string {
  return `faults: ${t.rounds} rounds: jobs lost ${t.lost}, duplicated ${t.duplicated}, corrupt files ${t.corrupt}, other problems ${t.other} (${t.jobs} jobs)`;
}

/** Whether the run found nothing wrong. */
export function clean(t: FaultTally): boolean {
  return t.lost + t.duplicated + t.corrupt + t.other === 0;
}

export { FAULT_KINDS, type FaultKind, type FaultTally };

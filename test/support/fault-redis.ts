/**
 * The Redis round of the fault run (fault-rounds.ts): distributed mode (a web server and a worker with a
 * 2 s stall timeout) on a redis-server that keeps an append-only file written on every command. Mid-job,
 * Redis is killed with SIGKILL and started again on the same port and folder after an outage drawn from
 * 0.5 to 5 s (longer than the stall timeout, often). Every job must end once: not lost, not announced
 * done twice, not back in line after it was done. Skipped where redis-server is not installed.
 */
import { promises as fs } from 'node:fs';
import { api, EventLog, slowGraph, tempDir } from './api-harness.ts';
import { flag, pick, type Round } from './fault-common.ts';
import { freePort, kill9, REDIS_SERVER, startRedis, startServer, startWorker, type Child } from './processes.ts';

const FINISHED = ['done', 'failed', 'cancelled', 'interrupted'];

export class DistributedStudio {
  private dir: string | undefined;
  private redisDir: string | undefined;
  private port = 0;
  private redis: Child | undefined;
  private server: Awaited<ReturnType<typeof startServer>> | undefined;
  private log: EventLog | undefined;
  private readonly done = new Map<string, number>();
  /** Jobs announced done and later back in line (ran again after they were done). */
  private readonly redone = new Set<string>();
  private readonly ledger = new Map<string, string>();
  /** Findings already counted (each job counts once, not at every later round). */
  private readonly counted = new Set<string>();

  private async ensure(): Promise<void> {
    if (this.server) return;
    this.dir = await tempDir('faults-distributed');
    this.redisDir = await tempDir('faults-redis');
    this.port = await freePort();
    const url = (await this.startRedis()).url;
    this.server = await startServer(['--data', this.dir, '--redis', url]);
    await startWorker(['--redis', url, '--data', this.dir, '--stall-timeout', '2']);
    this.log = await EventLog.connect(this.server);
    this.log.socket.on('job:done', (e) => this.done.set(e.jobId, (this.done.get(e.jobId) ?? 0) + 1));
    this.log.socket.on('job:requeued', (e) => {
      if (this.done.has(e.jobId)) this.redone.add(e.jobId);
    });
  }

  private async startRedis() {
    const redis = await startRedis({ port: this.port, persistDir: this.redisDir! });
    this.redis = redis.child;
    return redis;
  }

  async round(r: Round): Promise<void> {
    if (!REDIS_SERVER) {
      r.say('skipped: redis-server is not installed');
      return;
    }
    await this.ensure();
    const server = this.server!;
    const ids: string[] = [];
    for (let i = 0, n = 1 + pick(r.rng, 3); i < n; i++) {
      const steps = 20 + pick(r.rng, 60);
      const res = await api(server, 'POST', '/api/jobs', { graph: slowGraph(r.n * 100 + i, steps, 20, `round ${r.n} job ${i}`) });
      if (res.status !== 202) throw new Error(`submitting a job answered ${res.status}: ${JSON.stringify(res.body)}`);
      ids.push(res.body.job.id);
      this.ledger.set(res.body.job.id, `value ${r.n * 100 + i + steps}`);
    }
    r.tally.jobs += ids.length;
    const step = 1 + pick(r.rng, 15);
    await this.log!.waitFor('node:progress', (a) => a.jobId === ids[0] && a.step >= step, 180_000);
    await kill9(this.redis!);
    const outage = 500 + pick(r.rng, 4500);
    await new Promise((res) => setTimeout(res, outage));
    await this.startRedis();

    const ends: string[] = [];
    for (const [id, text] of this.ledger) {
      let body: { job: { state: string; attempts?: number }; results?: { save?: { text?: string } }; error?: { message: string } } | undefined;
      for (let i = 0; i < 900; i++) {
        const res = await api(server, 'GET', `/api/jobs/${id}`).catch(() => undefined);
        if (res?.status === 200 && FINISHED.includes(res.body.job.state)) {
          body = res.body;
          break;
        }
        if (res?.status === 404) break;
        await new Promise((res) => setTimeout(res, 100));
      }
      if (!body) {
        if (!this.counted.has(id)) flag(r.tally, 'lost', `redis: job ${id} was lost (never ended)`);
        this.counted.add(id);
        continue;
      }
      if (body.job.state === 'done' && body.results?.save?.text !== text && !this.counted.has(id)) {
        this.counted.add(id);
        flag(r.tally, 'corrupt', `redis: job ${id} is done with ${JSON.stringify(body.results?.save?.text)}, not "${text}"`);
      }
      if (ids.includes(id)) ends.push(`${body.job.state}${(body.job.attempts ?? 1) > 1 ? ` after ${body.job.attempts} attempts` : ''}`);
    }
    for (const id of this.ledger.keys()) {
      if (((this.done.get(id) ?? 0) > 1 || this.redone.has(id)) && !this.counted.has(`dup ${id}`)) {
        this.counted.add(`dup ${id}`);
        flag(r.tally, 'duplicated', `redis: job ${id} ran again after it was done (job:done ${this.done.get(id) ?? 0}×)`);
      }
    }
    r.say(`Redis killed at step ${step} of job 1 (${ids.length} jobs), back after ${(outage / 1000).toFixed(1)} s (stall timeout 2 s): ${ends.join(', ')}`);
  }

  async close(): Promise<void> {
    this.log?.close();
    for (const dir of [this.dir, this.redisDir]) if (dir) await fs.rm(dir, { recursive: true, force: true });
  }
}

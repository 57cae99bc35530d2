/**
 * The disk-full round of the fault run (fault-rounds.ts): a studio whose data folder is a small tmpfs
 * (a real full disk: ENOSPC from the kernel, SQLITE_FULL from SQLite), started with an access token that
 * every request sends as `?token=`. The disk is filled up while the studio works; it must refuse what it
 * cannot store with 507 (never 500), lose nothing it accepted, keep the token out of its log, and work
 * again once there is room. Mounting needs root: where it fails the round says so and is skipped.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { api, slowGraph, tempDir } from './api-harness.ts';
import { flag, pick, type Round } from './fault-common.ts';
import { kill9, startServer } from './processes.ts';

const FINISHED = ['done', 'failed', 'cancelled', 'interrupted'];

/** Fills the file system holding `dir` until a write fails with ENOSPC; returns the filler's path. */
async function fill(dir: string): Promise<string> {
  const filler = path.join(dir, 'filler.bin');
  const handle = await fs.open(filler, 'w');
  try {
    for (const size of [1 << 20, 1 << 12, 1 << 8]) {
      const chunk = Buffer.alloc(size, 1);
      for (;;) {
        try {
          await handle.write(chunk);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw err;
        }
      }
    }
  } finally {
    await handle.close().catch(() => undefined);
  }
  return filler;
}

export async function diskFullRound(r: Round): Promise<void> {
  const mount = await tempDir('faults-tmpfs');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', mount], { stdio: 'pipe' });
  } catch (err) {
    await fs.rm(mount, { recursive: true, force: true });
    r.say(`skipped: cannot mount a tmpfs here (${((err as { stderr?: Buffer }).stderr?.toString() || (err as Error).message).trim()})`);
    return;
  }
  const token = randomBytes(12).toString('hex');
  const q = `?token=${token}`;
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  try {
    server = await startServer(['--data', mount, '--token', token]);
    const s = server;
    const statuses = new Map<number, number>();
    const seen = (status: number) => statuses.set(status, (statuses.get(status) ?? 0) + 1);
    const waitEnd = async (id: string) => {
      for (let i = 0; i < 600; i++) {
        const res = await api(s, 'GET', `/api/jobs/${id}${q}`);
        if (res.status === 200 && FINISHED.includes(res.body.job.state)) return res.body;
        await new Promise((res) => setTimeout(res, 100));
      }
      return undefined;
    };
    const first = await api(s, 'POST', `/api/jobs${q}`, { graph: slowGraph(1, 3, 0, 'before the disk filled') });
    const kept = await api(s, 'PUT', `/api/graphs/kept${q}`, { graph: slowGraph(7, 3, 0, 'kept') });
    if (first.status !== 202 || kept.status !== 200)
      throw new Error(`the studio on the tmpfs did not work before the disk filled (${first.status}, ${kept.status})`);
    await waitEnd(first.body.job.id);

    // A job runs while the disk fills up: its result or its end may not fit; it must end all the same.
    const during = await api(s, 'POST', `/api/jobs${q}`, { graph: slowGraph(50, 20 + pick(r.rng, 40), 20, 'while the disk filled') });
    const filler = await fill(mount);
    const accepted: string[] = during.status === 202 ? [during.body.job.id] : [];
    for (let i = 0, n = 2 + pick(r.rng, 3); i < n; i++) {
      const res = await api(s, 'POST', `/api/jobs${q}`, { graph: slowGraph(100 + i, 2 + pick(r.rng, 5), 0, `disk full ${i}`) });
      seen(res.status);
      if (res.status === 202) accepted.push(res.body.job.id);
    }
    for (const name of ['kept', `new-${r.n}`]) seen((await api(s, 'PUT', `/api/graphs/${name}${q}`, { graph: slowGraph(8, 30, 0, name) })).status);
    const bad = [...statuses.keys()].filter((status) => status >= 500 && status !== 507);
    for (const status of bad) flag(r.tally, 'other', `disk full: a request answered ${status} (${statuses.get(status)}×)`);

    await fs.rm(filler);
    const ends: string[] = [];
    for (const id of accepted) {
      const end = await waitEnd(id);
      if (!end) flag(r.tally, 'lost', `disk full: accepted job ${id} never ended`);
      else ends.push(end.job.state === 'failed' ? `failed (${end.error?.message})` : end.job.state);
    }
    r.tally.jobs += accepted.length + 1;
    const after = await api(s, 'POST', `/api/jobs${q}`, { graph: slowGraph(200, 2, 0, 'after the disk was freed') });
    const afterEnd = after.status === 202 ? await waitEnd(after.body.job.id) : undefined;
    if (afterEnd?.job.state !== 'done')
      flag(r.tally, 'other', `disk freed: a new job ${after.status === 202 ? `ended ${afterEnd?.job.state ?? 'never'}` : `answered ${after.status}`}`);
    r.tally.jobs++;
    const graph = await api(s, 'GET', `/api/graphs/kept${q}`);
    if (graph.status !== 200 || !Array.isArray(graph.body.nodes)) flag(r.tally, 'corrupt', `disk full: the saved graph "kept" reads ${graph.status}`);
    if (s.child.output().includes(token)) flag(r.tally, 'other', 'disk full: the access token is in the server log');
    const answered = [...statuses].map(([status, n]) => `${n}× ${status}`).join(', ');
    r.say(
      `tmpfs of 24 MiB filled; requests answered ${answered}; ${accepted.length} accepted jobs ended ${ends.join(', ') || '-'}; ` +
        `freed: a new job ${afterEnd?.job.state ?? 'did not run'}; token ${s.child.output().includes(token) ? 'IN' : 'not in'} the log`,
    );
  } finally {
    if (server) await kill9(server.child);
    try {
      execFileSync('umount', [mount], { stdio: 'pipe' });
    } catch {
      execFileSync('umount', ['-l', mount], { stdio: 'pipe' });
    }
    await fs.rm(mount, { recursive: true, force: true });
  }
}

/**
 * Child processes for the tests that run the real thing: redis-server on a free port, the studio
 * server and the distributed worker (test/support/studio-entry.ts, test node catalog). Every process
 * started here is remembered, so `stopAll()` in afterAll ends them even when a test failed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { PROJECT_ROOT } from '../../server/util/project.ts';

const started = new Set<ChildProcess>();

export const REDIS_SERVER =
  ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => existsSync(p)) ??
  (spawnSync('which', ['redis-server']).stdout?.toString().trim() || null);

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface Child {
  process: ChildProcess;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** Resolves with the first match of `pattern` in its output (now or later). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited: Promise<number | null>;
}

function track(child: ChildProcess, what: string): Child {
  started.add(child);
  let text = '';
  const waiters: (() => void)[] = [];
  const onData = (d: Buffer) => {
    text += d.toString();
    for (const w of waiters.splice(0)) w();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      started.delete(child);
      for (const w of waiters.splice(0)) w();
      resolve(code);
    }),
  );
  return {
    process: child,
    output: () => text,
    exited,
    waitFor(pattern, timeoutMs = 180_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${what}: timed out waiting for ${pattern}; it printed:\n${text}`)), timeoutMs);
        const check = () => {
          const m = text.match(pattern);
          if (m) {
            clearTimeout(timer);
            resolve(m);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            clearTimeout(timer);
            reject(new Error(`${what} exited (${child.exitCode ?? child.signalCode}) before printing ${pattern}:\n${text}`));
          } else waiters.push(check);
        };
        check();
      });
    },
  };
}

export interface RedisServer {
  url: string;
  /** The running redis-server (a new one after restart()). */
  child: Child;
  /** Stops it (SIGTERM: with `persistDir`, everything is on disk first) and waits until it exited. */
  stop(): Promise<void>;
  /** Starts it again on the same port (with `persistDir`, with the same data); resolves once it is ready. */
  restart(): Promise<void>;
}

/**
 * A throwaway redis-server, loopback only. Without `persistDir`, nothing is kept. With it, every write
 * goes to an append-only file there (fsync always), so a stop and restart is an outage, not a new Redis.
 * `port`: a given port (to start a Redis again where clients expect it). `args`: more redis-server options (e.g. ['--maxmemory-policy', 'allkeys-lru']).
 */
export async function startRedis(opts: { port?: number; persistDir?: string; args?: string[] } = {}): Promise<RedisServer> {
  if (!REDIS_SERVER) throw new Error('redis-server is not installed (apt-get install redis-server)');
  const server = REDIS_SERVER;
  const port = opts.port ?? (await freePort());
  const persistence = opts.persistDir ? ['--dir', opts.persistDir, '--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence, ...(opts.args ?? [])];
  const launch = async () => {
    const child = track(spawn(server, args, { stdio: ['ignore', 'pipe', 'pipe'] }), 'redis-server');
    await child.waitFor(/Ready to accept connections/, 20_000);
    return child;
  };
  const redis: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    child: await launch(),
    async stop() {
      redis.child.process.kill('SIGTERM');
      await redis.child.exited;
    },
    async restart() {
      redis.child = await launch();
    },
  };
  return redis;
}

const ENTRY = path.join(PROJECT_ROOT, 'test/support/studio-entry.ts');

function env(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !['PORT', 'HOST', 'DUALSTYLE_TOKEN', 'DUALSTYLE_EP', 'DUALSTYLE_REDIS', 'DUALSTYLE_DATA'].includes(k)),
  );
}

/** The studio server with the test catalog; resolves once it listens, with its URL. */
export async function startServer(args: string[]): Promise<{ url: string; child: Child }> {
  const child = track(
    spawn(process.execPath, ['--import', 'tsx', ENTRY, 'server', '--port', '0', '--ep', 'cpu', ...args], { cwd: PROJECT_ROOT, env: env() }),
    'server',
  );
  const m = await child.waitFor(/Dual Style Studio running at (http:\/\/127\.0\.0\.1:\d+\/)/);
  await child.waitFor(/jobs: /);
  return { url: m[1]!, child };
}

/** A distributed worker with the test catalog; resolves once it takes jobs, with its name. */
export async function startWorker(args: string[]): Promise<{ name: string; child: Child }> {
  const child = track(spawn(process.execPath, ['--import', 'tsx', ENTRY, 'worker', '--ep', 'cpu', ...args], { cwd: PROJECT_ROOT, env: env() }), 'worker');
  const m = await child.waitFor(/worker "([^"]+)" taking jobs/);
  return { name: m[1]!, child };
}

export function kill9(child: Child): Promise<number | null> {
  child.process.kill('SIGKILL');
  return child.exited;
}

/** Ends every process these helpers started (SIGKILL: nothing to wait for). */
export async function stopAll(): Promise<void> {
  const all = [...started];
  for (const c of all) c.kill('SIGKILL');
  await Promise.all(all.map((c) => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise((r) => c.once('exit', r)))));
}

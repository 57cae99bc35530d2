/**
 * The studio server: express (HTTP API + built client) and socket.io on one HTTP server, the job
 * service (embedded: SQLite and an in-process runner; distributed: BullMQ on Redis, run by workers),
 * and the data folder (saved graphs, uploads, results, the embedded job store).
 */
import { readFileSync } from 'node:fs';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import express from 'express';
import { nodeDefinitions } from '../nodes/index.ts';
import { PROJECT_ROOT } from './util/project.ts';
import type { AnyNodeDefinition, Logger } from '../nodes/types.ts';
import type { ExecutionProviderRequest } from './engine/onnx/runtime.ts';
import { GraphRunner } from './executor/graph-runner.ts';
import { createCatalog } from './catalog.ts';
import type { JobService, RestartPolicy, Retention } from './executor/job-service.ts';
import { openJobService } from './executor/open-jobs.ts';
import { isLoopbackHost, requireToken } from './http/auth.ts';
import { clientRoutes } from './http/client.ts';
import { apiNotFound, errorHandler } from './http/errors.ts';
import { graphRoutes } from './http/graphs.ts';
import { jobRoutes } from './http/jobs.ts';
import { broadcaster, createRealtime, type StudioSocketServer } from './http/realtime.ts';
import { systemRoutes } from './http/system.ts';
import { uploadRoutes } from './http/uploads.ts';
import { GraphStore } from './store/graphs.ts';
import { resultsDir, uploadsDir, userGraphsDir } from './store/paths.ts';


export interface StudioOptions {
  /** Folder for saved graphs, uploads and results. Created when missing. */
  dataDir: string;
  /** Default 127.0.0.1. Any other (non-loopback) address requires `token`. */
  host?: string;
  /** Default 8188; 0 picks a free port. */
  port?: number;
  /** Access token required on every /api request and socket connection when set. */
  token?: string;
  /** Node definitions to serve; default: the project's catalog (nodes/index.ts). */
  catalog?: AnyNodeDefinition[];
  /** Shipped templates (read-only); default <project>/graphs. */
  graphsDir?: string;
  /** Built client; default <project>/dist/client. */
  clientDir?: string;
  executionProvider?: ExecutionProviderRequest;
  limits?: { jsonBodyBytes?: number; uploadBytes?: number; uploadPixels?: number; maxPending?: number };
  /** Minimum time between two preview frames of a node (the executor's throttle). */
  previewIntervalMs?: number;
  /** Where server messages go; default: console (debug suppressed). */
  logger?: Logger;
  /** Distributed mode: enqueue into BullMQ on this Redis; `dualstyle worker` processes run the jobs. */
  redis?: string;
  /** Namespace of the Redis keys (default "dualstyle"). */
  redisPrefix?: string;
  /** Embedded mode: a job that was running when the server stopped is re-queued (default) or marked interrupted. */
  onRestart?: RestartPolicy;
  /** How many finished jobs the history keeps, and for how long. */
  retention?: Retention;
}

export interface Studio {
  url: string;
  port: number;
  httpServer: http.Server;
  io: StudioSocketServer;
  jobs: JobService;
  close(): Promise<void>;
}

const MiB = 1024 * 1024;

export const consoleLogger: Logger = {
  debug: () => {},
  info: (msg) => console.log(msg),
  warn: (msg, extra) => console.warn(`warning: ${msg}`, ...(extra === undefined ? [] : [extra])),
  error: (msg, extra) => console.error(`error: ${msg}`, ...(extra === undefined ? [] : [extra])),
};

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

/** Thrown when the server cannot listen; `code` is the system error (EADDRINUSE, EACCES, ...). */
export class ListenError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = 'ListenError';
  }
}

export async function createStudio(opts: StudioOptions): Promise<Studio> {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 8188;
  const token = opts.token || undefined;
  if (!isLoopbackHost(host) && !token) {
    throw new Error(
      `refusing to listen on ${host} without an access token: anyone on the network could run jobs and read files. ` +
        'Pass --token <secret> (or set DUALSTYLE_TOKEN), or listen on 127.0.0.1.',
    );
  }
  const log = opts.logger ?? consoleLogger;
  const executionProvider = opts.executionProvider ?? 'auto';
  const limits = {
    jsonBodyBytes: opts.limits?.jsonBodyBytes ?? 2 * MiB,
    uploadBytes: opts.limits?.uploadBytes ?? 20 * MiB,
    uploadPixels: opts.limits?.uploadPixels ?? 4096 * 4096,
  };

  const dataDir = path.resolve(opts.dataDir);
  for (const dir of [dataDir, uploadsDir(dataDir), resultsDir(dataDir), userGraphsDir(dataDir)]) {
    await fs.mkdir(dir, { recursive: true });
  }

  const catalog = createCatalog(opts.catalog ?? nodeDefinitions);
  const graphRunner = new GraphRunner({ catalog, dataDir, executionProvider, logger: log });
  const graphs = new GraphStore(opts.graphsDir ?? path.join(PROJECT_ROOT, 'graphs'), userGraphsDir(dataDir));

  const app = express();
  app.disable('x-powered-by');
  const httpServer = http.createServer(app);
  const jobs = await openJobService({
    dataDir,
    runner: graphRunner,
    log,
    ...(opts.redis ? { redis: opts.redis } : {}),
    ...(opts.redisPrefix ? { redisPrefix: opts.redisPrefix } : {}),
    ...(opts.limits?.maxPending !== undefined ? { maxPending: opts.limits.maxPending } : {}),
    ...(opts.onRestart ? { onRestart: opts.onRestart } : {}),
    ...(opts.retention ? { retention: opts.retention } : {}),
    ...(opts.previewIntervalMs !== undefined ? { previewIntervalMs: opts.previewIntervalMs } : {}),
  });
  const io = createRealtime(httpServer, { token, jobs: () => jobs });
  const unsubscribe = jobs.subscribe(broadcaster(io));

  if (token) app.use('/api', requireToken(token));
  app.use('/api', express.json({ limit: limits.jsonBodyBytes }));
  app.use('/api', systemRoutes(catalog, { version: packageVersion(), executionProvider, dataDir }));
  app.use('/api', jobRoutes(jobs, catalog));
  app.use('/api', graphRoutes(graphs, catalog));
  app.use('/api', uploadRoutes(dataDir, limits));
  app.use('/api', apiNotFound);
  app.use(clientRoutes(opts.clientDir ?? path.join(PROJECT_ROOT, 'dist', 'client')));
  app.use(errorHandler((msg, err) => log.error(msg, err)));

  let boundPort: number;
  try {
    boundPort = await listen(httpServer, port, host);
  } catch (err) {
    unsubscribe();
    io.close();
    await jobs.close();
    throw err;
  }
  const urlHost = host.includes(':') ? `[${host}]` : host;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${boundPort}/`,
    port: boundPort,
    httpServer,
    io,
    jobs,
    close() {
      closing ??= (async () => {
        unsubscribe();
        await jobs.close();
        await new Promise<void>((resolve) => {
          // io.close() also closes the HTTP server; idle keep-alive sockets must not hold it open.
          void io.close(() => resolve());
          httpServer.closeAllConnections();
        });
      })();
      return closing;
    },
  };
}

function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      const where = `${host}:${port}`;
      const message =
        err.code === 'EADDRINUSE'
          ? `port ${port} is already in use on ${host}: stop the other server or choose another port (--port)`
          : err.code === 'EACCES'
            ? `not allowed to listen on ${where} (ports below 1024 need privileges): choose another port (--port)`
            : err.code === 'EADDRNOTAVAIL'
              ? `cannot listen on ${host}: this machine has no such address (--host)`
              : `cannot listen on ${where}: ${err.message}`;
      reject(new ListenError(message, err.code));
    };
    const onListening = () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

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
import helmet from 'helmet';
import { nodeDefinitions } from '../nodes/index.ts';
import { removeStaleTemps } from './util/atomic.ts';
import { PROJECT_ROOT } from './util/project.ts';
import type { AnyNodeDefinition } from '../nodes/types.ts';
import type { Logger } from './util/log.ts';
import type { ExecutionProviderRequest } from './engine/runtime/runtime.ts';
import { setTensorrtEngineCache } from './engine/runtime/sessions.ts';
import { loadPreviewDecoder } from './engine/sd/preview-decoder.ts';
import { DEFAULT_RELEASE_IDLE_MS, GraphRunner } from './executor/graph-runner.ts';
import { catalogWithPackages, type CustomNodes } from './node-packages/load.ts';
import type { JobService, RestartPolicy, Retention } from './executor/job-service.ts';
import { openJobService } from './executor/open-jobs.ts';
import { isLoopbackHost, requireToken, tokenProblem } from './http/auth.ts';
import { clientRoutes } from './http/client.ts';
import { ConnectionGuard } from './http/connections.ts';
import { apiNotFound, errorHandler, notFound } from './http/errors.ts';
import { GuessLimiter, type GuessLimitOptions } from './http/guesses.ts';
import { HostAllowList, hostAndOriginGuard, refuseSimpleRequests } from './http/guard.ts';
import { graphRoutes } from './http/graphs.ts';
import { maskPresetRoutes } from './http/mask-presets.ts';
import { jobRoutes } from './http/jobs.ts';
import { broadcaster, createRealtime, type StudioSocketServer } from './http/realtime.ts';
import { systemRoutes } from './http/system.ts';
import { uploadRoutes } from './http/uploads.ts';
import { DEFAULT_GRAPH_QUOTA, GraphStore } from './store/graphs.ts';
import { maskPresetsDir, MaskPresetStore } from './store/mask-presets.ts';
import { graphsIndexFile, resultsDir, uploadsDir, userGraphsDir } from './store/paths.ts';

export interface StudioOptions {
  /** Folder for saved graphs, uploads and results. Created when missing. */
  dataDir: string;
  /** Default 127.0.0.1. Any other (non-loopback) address requires `token`. */
  host?: string;
  /** Default 8188; 0 picks a free port. */
  port?: number;
  /** Access token required on every /api request and socket connection when set. */
  token?: string;
  /**
   * Host names the server answers to besides loopback and `host` (`--allow-host`): every request's
   * Host header, and a browser's Origin, must name one of them.
   */
  allowHosts?: string[];
  /** Folders Load Model may read besides <data>/models and the project's models/ (`--models-root`). */
  modelRoots?: string[];
  /** Most memory one job may need, by the estimate, in bytes (`--max-job-memory`; default 3/4 of the machine's). */
  maxJobMemory?: number;
  /** Loaded models are released after this long without a job (ms; 0: never; default 60 s). */
  releaseIdleMs?: number;
  /** Node definitions to serve; default: the project's catalog (nodes/index.ts). */
  catalog?: AnyNodeDefinition[];
  /**
   * Node packages to load next to them: `<data>/custom_nodes/*` and `extra` (`--nodes`); default false
   * (none: main.ts asks for them unless --no-custom-nodes). One that fails is reported and left out.
   */
  customNodes?: CustomNodes;
  /** Shipped templates (read-only); default <project>/graphs. */
  graphsDir?: string;
  /** Built client; default <project>/dist/client. */
  clientDir?: string;
  executionProvider?: ExecutionProviderRequest;
  /** CUDA device index (`--gpu N`). */
  gpu?: number;
  /**
   * A folder with taesd_decoder.onnx (engine/onnx/preview-decoder.ts): the samplers' live previews are
   * decoded by it instead of the latent→RGB projection. Loaded at start, so a wrong folder is reported then.
   */
  previewDecoder?: string;
  limits?: {
    jsonBodyBytes?: number;
    uploadBytes?: number;
    uploadPixels?: number;
    maxPending?: number;
    /** What the uploads folder may hold in all (default 2 GiB). */
    uploadsTotalBytes?: number;
    /** Most saved graphs and their total size (defaults: 1000, 256 MiB). */
    graphCount?: number;
    graphBytes?: number;
    /** Most socket.io connections open at once (default 64). */
    maxSockets?: number;
    /** Most HTTP connections open at once (default 256); strangers are shed first (http/connections.ts). */
    maxHttpConnections?: number;
    /** Wrong-token guesses allowed per client address (default 10 a minute; `now` for tests). */
    guesses?: GuessLimitOptions;
    /** A socket that has not authenticated within this time is closed (default 5 s). */
    socketAuthTimeoutMs?: number;
  };
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

/** Who may connect: the address and port, and the token, refused when weak or missing off loopback. */
function checkAccess(opts: StudioOptions): { host: string; port: number; token: string | undefined } {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 8188;
  const token = opts.token || undefined;
  const weak = token === undefined ? null : tokenProblem(token);
  if (weak) throw new Error(weak);
  if (!isLoopbackHost(host) && !token) {
    throw new Error(
      `refusing to listen on ${host} without an access token: anyone on the network could run jobs and read files. ` +
        'Pass --token <secret> (or set DUALSTYLE_TOKEN), or listen on 127.0.0.1.',
    );
  }
  return { host, port, token };
}

/** The data folder and its subfolders, created when missing, cleared of temporary files an interrupted write left. */
async function prepareDataDir(dataDir: string, log: Logger): Promise<void> {
  for (const dir of [dataDir, uploadsDir(dataDir), resultsDir(dataDir), userGraphsDir(dataDir)]) {
    await fs.mkdir(dir, { recursive: true });
    const stale = await removeStaleTemps(dir);
    if (stale.length > 0) log.info(`removed ${stale.length} unfinished temporary file(s) from ${path.basename(dir)}/ (a write was interrupted)`);
  }
}

/** What runs graphs: the catalog with its node packages, the preview decoder, and the graph runner. */
async function openRunner(opts: StudioOptions, dataDir: string, executionProvider: ExecutionProviderRequest, log: Logger) {
  const catalog = await catalogWithPackages(opts.catalog ?? nodeDefinitions, dataDir, opts.customNodes ?? false, log);
  const previewDecoder = opts.previewDecoder
    ? await loadPreviewDecoder(opts.previewDecoder, executionProvider, { deviceId: opts.gpu ?? 0 }, (err) =>
        log.warn(`the preview decoder failed; live previews use the latent projection from now on: ${err.message}`),
      )
    : undefined;
  const graphRunner = new GraphRunner({
    catalog,
    dataDir,
    executionProvider,
    gpu: opts.gpu,
    previewDecoder,
    logger: log,
    modelRoots: opts.modelRoots,
    ...(opts.maxJobMemory !== undefined ? { maxJobMemoryBytes: opts.maxJobMemory } : {}),
    releaseIdleMs: opts.releaseIdleMs ?? DEFAULT_RELEASE_IDLE_MS,
  });
  return { catalog, previewDecoder, graphRunner };
}
type Runner = Awaited<ReturnType<typeof openRunner>>;

/**
 * The HTTP server. Slow clients must not hold connections forever (Node's defaults: 60 s for headers,
 * 300 s per request, and these deadlines checked only every 30 s): a half-sent request goes after at most ~11 s.
 */
function createHttpServer(app: express.Express): http.Server {
  const httpServer = http.createServer({ connectionsCheckingInterval: 1000 }, app);
  httpServer.headersTimeout = 10_000;
  httpServer.requestTimeout = 120_000;
  return httpServer;
}

/** The job service (embedded or on Redis); the preview decoder is released when it cannot open. */
async function openJobs(opts: StudioOptions, dataDir: string, { graphRunner, previewDecoder }: Runner, log: Logger): Promise<JobService> {
  return openJobService({
    dataDir,
    runner: graphRunner,
    log,
    ...(opts.redis ? { redis: opts.redis } : {}),
    ...(opts.redisPrefix ? { redisPrefix: opts.redisPrefix } : {}),
    ...(opts.limits?.maxPending !== undefined ? { maxPending: opts.limits.maxPending } : {}),
    ...(opts.onRestart ? { onRestart: opts.onRestart } : {}),
    ...(opts.retention ? { retention: opts.retention } : {}),
    ...(opts.previewIntervalMs !== undefined ? { previewIntervalMs: opts.previewIntervalMs } : {}),
  }).catch(async (err: unknown) => {
    await previewDecoder?.release();
    throw err;
  });
}

/** What the routes are given. */
interface Routes {
  opts: StudioOptions;
  dataDir: string;
  executionProvider: ExecutionProviderRequest;
  token: string | undefined;
  runner: Runner;
  jobs: JobService;
  connections: ConnectionGuard;
  guesses: GuessLimiter;
  allowedHosts: HostAllowList;
  log: Logger;
}

/** The guards every request passes (host and origin, the token, simple requests, body size), then the API and the client. */
function mountRoutes(app: express.Express, r: Routes): void {
  const { opts, dataDir, token, connections, guesses, jobs, log } = r;
  const { catalog, graphRunner } = r.runner;
  const limits = {
    jsonBodyBytes: opts.limits?.jsonBodyBytes ?? 2 * MiB,
    uploadBytes: opts.limits?.uploadBytes ?? 20 * MiB,
    uploadPixels: opts.limits?.uploadPixels ?? 4096 * 4096,
    uploadsTotalBytes: opts.limits?.uploadsTotalBytes ?? 2 * 1024 * MiB,
  };
  app.use(hostAndOriginGuard(r.allowedHosts));
  // Without a token, passing the Host/Origin check is the authentication (the local origin rule).
  if (!token) {
    app.use((req, _res, next) => {
      connections.trust(req.socket);
      next();
    });
  }
  app.use(securityHeaders());
  if (token)
    app.use(
      '/api',
      requireToken(token, guesses, (socket) => connections.trust(socket)),
    );
  app.use('/api', refuseSimpleRequests);
  app.use('/api', express.json({ limit: limits.jsonBodyBytes }));
  app.use(
    '/api',
    systemRoutes(catalog, {
      version: packageVersion(),
      executionProvider: r.executionProvider,
      gpu: opts.gpu ?? 0,
      modelRoots: graphRunner.services.modelRoots,
      validateForRun: (raw) => graphRunner.check(raw, { requireOutput: true }),
      ...(jobs.health ? { queueHealth: () => jobs.health!() } : {}),
    }),
  );
  app.use(
    '/api',
    jobRoutes(jobs, catalog, {
      validate: (raw) => graphRunner.check(raw, { requireOutput: true }),
      preflight: (graph, outputs) => graphRunner.preflight(graph, outputs),
    }),
  );
  app.use('/api', graphRoutes(graphStore(opts, dataDir), catalog));
  app.use('/api', maskPresetRoutes(new MaskPresetStore(maskPresetsDir(dataDir)), catalog));
  app.use('/api', uploadRoutes(dataDir, limits));
  app.use('/api', apiNotFound);
  app.use(clientRoutes(opts.clientDir ?? path.join(PROJECT_ROOT, 'dist', 'client')));
  app.use(notFound);
  app.use(errorHandler((msg, err) => log.error(msg, err)));
}

/** The saved graphs: the shipped templates (read-only) and the user's, within the graph quota. */
function graphStore(opts: StudioOptions, dataDir: string): GraphStore {
  return new GraphStore(
    opts.graphsDir ?? path.join(PROJECT_ROOT, 'graphs'),
    userGraphsDir(dataDir),
    { maxGraphs: opts.limits?.graphCount ?? DEFAULT_GRAPH_QUOTA.maxGraphs, maxTotalBytes: opts.limits?.graphBytes ?? DEFAULT_GRAPH_QUOTA.maxTotalBytes },
    graphsIndexFile(dataDir),
  );
}

/**
 * Starts the studio: checks who may connect, prepares the data folder, opens the graph runner and the
 * job service, mounts the routes and the socket, and listens; what was opened is closed again when it cannot listen.
 */
export async function createStudio(opts: StudioOptions): Promise<Studio> {
  const { host, port, token } = checkAccess(opts);
  const log = opts.logger ?? consoleLogger;
  const executionProvider = opts.executionProvider ?? 'auto';
  const dataDir = path.resolve(opts.dataDir);
  await prepareDataDir(dataDir, log);
  setTensorrtEngineCache(path.join(dataDir, 'tensorrt-engines'));
  const runner = await openRunner(opts, dataDir, executionProvider, log);
  const { previewDecoder } = runner;

  const app = express();
  app.disable('x-powered-by');
  const httpServer = createHttpServer(app);
  const connections = new ConnectionGuard(httpServer, opts.limits?.maxHttpConnections ?? 256);
  const guesses = new GuessLimiter(opts.limits?.guesses);
  const allowedHosts = HostAllowList.forServer(host, opts.allowHosts);
  const jobs = await openJobs(opts, dataDir, runner, log);
  const io = createRealtime(httpServer, {
    token,
    jobs: () => jobs,
    allowedHosts,
    maxConnections: opts.limits?.maxSockets,
    guesses,
    ...(opts.limits?.socketAuthTimeoutMs !== undefined ? { connectTimeoutMs: opts.limits.socketAuthTimeoutMs } : {}),
    onAuthenticated: (socket) => connections.trust(socket.request.socket),
  });
  const unsubscribe = jobs.subscribe(broadcaster(io));
  mountRoutes(app, { opts, dataDir, executionProvider, token, runner, jobs, connections, guesses, allowedHosts, log });

  let boundPort: number;
  try {
    boundPort = await listen(httpServer, port, host);
  } catch (err) {
    unsubscribe();
    // Its promise settles without error (a close error goes to a callback, and there is none).
    void io.close();
    await jobs.close();
    await previewDecoder?.release();
    throw err;
  }
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return runningStudio({ url: `http://${urlHost}:${boundPort}/`, port: boundPort, httpServer, io, jobs }, runner, unsubscribe);
}

/** The listening studio; close() unsubscribes the sockets, closes the jobs, the runner and the decoder, then the server (once). */
function runningStudio(parts: Omit<Studio, 'close'>, { graphRunner, previewDecoder }: Runner, unsubscribe: () => void): Studio {
  const { httpServer, io, jobs } = parts;
  let closing: Promise<void> | undefined;
  return {
    ...parts,
    close() {
      closing ??= (async () => {
        unsubscribe();
        await jobs.close();
        graphRunner.close();
        await previewDecoder?.release();
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

/**
 * helmet's headers, with a Content Security Policy for the editor: its own scripts only, inline
 * styles (React and styled-components set them), images from itself, data: and blob: (previews, PNG
 * drops), connections to itself (fetch and the socket), and no framing. Plain HTTP on a LAN address
 * must keep working, so no HSTS and no upgrade-insecure-requests.
 */
function securityHeaders() {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:', 'blob:'],
        fontSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        workerSrc: ["'self'", 'blob:'],
        objectSrc: ["'none'"],
        baseUri: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    strictTransportSecurity: false,
    crossOriginEmbedderPolicy: false,
  });
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

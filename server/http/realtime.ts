/** socket.io on the HTTP server: every event of the job service is sent to every client of this server. */
import type { Server as HttpServer } from 'node:http';
import { Server } from 'socket.io';
import type { JobService } from '../executor/job-service.ts';
import type { ClientToServerEvents, OutgoingEvent, ServerToClientEvents } from '../protocol/events.ts';
import { socketTokenCheck } from './auth.ts';
import { checkHostAndOrigin, type HostAllowList } from './guard.ts';

export type StudioSocketServer = Server<ClientToServerEvents, ServerToClientEvents>;

export interface RealtimeOptions {
  token?: string;
  jobs: () => JobService;
  /** Host and Origin names a handshake may carry (the same as for HTTP). */
  allowedHosts: HostAllowList;
  /** Most sockets open at once; a handshake beyond it is refused (default 64). */
  maxConnections?: number;
  /** A socket that has not joined (authenticated) within this time is closed (default 5 s). */
  connectTimeoutMs?: number;
}

export function createRealtime(httpServer: HttpServer, opts: RealtimeOptions): StudioSocketServer {
  const maxConnections = opts.maxConnections ?? 64;
  const io: StudioSocketServer = new Server<ClientToServerEvents, ServerToClientEvents>(httpServer, {
    serveClient: false,
    // Preview frames are small; nothing a client sends is large.
    maxHttpBufferSize: 64 * 1024,
    // socket.io's default (45 s) let an unauthenticated socket sit open that long in token mode.
    connectTimeout: opts.connectTimeoutMs ?? 5000,
    // Called for every handshake (polling or WebSocket), before a socket exists. No CORS is configured:
    // a foreign origin is refused here, not merely left unreadable.
    allowRequest: (req, callback) => {
      const refusal = checkHostAndOrigin(req, opts.allowedHosts);
      if (refusal) return callback(refusal.message, false);
      if (io.engine.clientsCount >= maxConnections) {
        return callback(`too many connections (${maxConnections} open); close other studio tabs and reload`, false);
      }
      callback(null, true);
    },
  });
  if (opts.token) io.use(socketTokenCheck(opts.token));
  io.on('connection', (socket) => {
    opts
      .jobs()
      .queue()
      .then(
        (q) => socket.emit('queue', q),
        () => undefined,
      );
    // All job events are broadcast; a room per job is kept for clients that want to filter later.
    socket.on('job:subscribe', (jobId) => {
      if (typeof jobId === 'string' && jobId.length <= 128) void socket.join(`job:${jobId}`);
    });
  });
  return io;
}

/** Sends a job service event to every socket of this server. */
export function broadcaster(io: StudioSocketServer) {
  return (event: OutgoingEvent): void => {
    // The union is correlated by name; socket.io's typed emit cannot see that through a union.
    (io.emit as (name: string, payload: unknown) => boolean)(event.name, event.args);
  };
}

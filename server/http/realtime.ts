/**
 * socket.io on the HTTP server: every event of the job service is sent to every client of this server.
 *
 * Authentication comes before resources: a socket takes one of the `maxConnections` slots only once it
 * passed the token check (or, without a token, the Host/Origin check every handshake gets). A socket
 * that has not sent its CONNECT packet yet holds no slot and is closed after `connectTimeoutMs`; one that
 * sent a wrong token is answered connect_error and closed at once. Before, the slot was counted at the
 * handshake, so 64 sockets that never authenticated kept the real editor out.
 */
import type { Server as HttpServer } from 'node:http';
import { Server, type Socket } from 'socket.io';
import type { JobService } from '../executor/job-service.ts';
import type { ClientToServerEvents, OutgoingEvent, ServerToClientEvents } from '../protocol/events.ts';
import { socketTokenCheck } from './auth.ts';
import { GuessLimiter } from './guesses.ts';
import { checkHostAndOrigin, type HostAllowList } from './guard.ts';

export type StudioSocketServer = Server<ClientToServerEvents, ServerToClientEvents>;

/** Most jobs one socket follows (`job:subscribe`); a further subscription drops the oldest. */
export const MAX_SUBSCRIPTIONS = 64;

export interface RealtimeOptions {
  token?: string;
  jobs: () => JobService;
  /** Host and Origin names a handshake may carry (the same as for HTTP). */
  allowedHosts: HostAllowList;
  /** Most authenticated sockets open at once; one beyond it is refused (default 64). */
  maxConnections?: number;
  /** A connection that has not authenticated within this time is closed (default 5 s). */
  connectTimeoutMs?: number;
  /** Wrong tokens per address (shared with the HTTP check). */
  guesses?: GuessLimiter;
  /** Hears the connection of every socket that authenticated. */
  onAuthenticated?: (socket: Socket) => void;
}

/** Answers connect_error, then closes the connection (once the error packet has been written). */
function refuse(socket: Socket, next: (err?: Error) => void, message: string): void {
  next(new Error(message));
  // socket.io writes the CONNECT_ERROR packet on the next tick; engine.io's close waits for it to drain.
  setImmediate(() => socket.conn.close());
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
      callback(refusal ? refusal.message : null, refusal === null);
    },
  });
  if (opts.token) io.use(socketTokenCheck(opts.token, opts.guesses ?? new GuessLimiter(), refuse));
  // After the token: only authenticated sockets are counted (those connected, i.e. past the middlewares).
  io.use((socket, next) => {
    if (io.of('/').sockets.size >= maxConnections) {
      return refuse(socket, next, `too many connections (${maxConnections} open); close other studio tabs and reload`);
    }
    opts.onAuthenticated?.(socket);
    next();
  });
  io.on('connection', (socket) => {
    opts
      .jobs()
      .queue()
      .then(
        (q) => socket.emit('queue', q),
        () => undefined,
      );
    // All job events are broadcast; a room per job is kept for clients that want to filter later.
    // Bounded per socket: the oldest subscription is dropped (7 M rooms from 10 sockets took 3.5 GB).
    // socket.io leaves every room of a socket when it disconnects.
    const followed = new Set<string>();
    socket.on('job:subscribe', (jobId) => {
      if (typeof jobId !== 'string' || jobId.length > 128) return;
      const room = `job:${jobId}`;
      followed.delete(room);
      followed.add(room);
      void socket.join(room);
      if (followed.size > MAX_SUBSCRIPTIONS) {
        const oldest = followed.values().next().value!;
        followed.delete(oldest);
        void socket.leave(oldest);
      }
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

/** socket.io on the HTTP server: every event of the job service is sent to every client of this server. */
import type { Server as HttpServer } from 'node:http';
import { Server } from 'socket.io';
import type { JobService } from '../executor/job-service.ts';
import type { ClientToServerEvents, OutgoingEvent, ServerToClientEvents } from '../protocol/events.ts';
import { socketTokenCheck } from './auth.ts';

export type StudioSocketServer = Server<ClientToServerEvents, ServerToClientEvents>;

export function createRealtime(httpServer: HttpServer, opts: { token?: string; jobs: () => JobService }): StudioSocketServer {
  const io: StudioSocketServer = new Server<ClientToServerEvents, ServerToClientEvents>(httpServer, {
    serveClient: false,
    // Preview frames are small; nothing a client sends is large.
    maxHttpBufferSize: 64 * 1024,
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

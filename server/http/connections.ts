/**
 * The HTTP server's connection cap, with strangers shed first. Node's own `maxConnections` refuses the
 * newest connection when the cap is reached, so anyone could hold every slot with half-sent requests
 * (19 of 40 health probes failed while they did) before any token or Host check ran. Here a connection
 * becomes trusted once one of its requests passed authentication (the token, or the local origin rule
 * without one); when the cap is reached, the oldest connection not trusted yet is closed to make room,
 * and only when every open connection is trusted is the new one refused.
 */
import type http from 'node:http';
import type { Socket } from 'node:net';

export class ConnectionGuard {
  /** Open connections, oldest first (a Set keeps insertion order). */
  private readonly open = new Set<Socket>();
  private readonly trusted = new WeakSet<Socket>();
  /** Strangers closed to make room, and new connections refused, since start. */
  shed = 0;
  refused = 0;

  constructor(
    server: http.Server,
    /** Most connections open at once. */
    readonly max: number,
  ) {
    server.on('connection', (socket: Socket) => this.admit(socket));
  }

  /** A request on `socket` passed authentication: it keeps its slot when strangers are shed. */
  trust(socket: Socket): void {
    this.trusted.add(socket);
  }

  get size(): number {
    return this.open.size;
  }

  private admit(socket: Socket): void {
    if (this.open.size >= this.max) {
      const stranger = this.oldestStranger();
      if (!stranger) {
        this.refused++;
        socket.destroy();
        return;
      }
      this.shed++;
      this.open.delete(stranger);
      stranger.destroy();
    }
    this.open.add(socket);
    socket.once('close', () => this.open.delete(socket));
  }

  private oldestStranger(): Socket | undefined {
    for (const s of this.open) if (!this.trusted.has(s)) return s;
    return undefined;
  }
}

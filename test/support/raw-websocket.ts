/**
 * A raw WebSocket client for floods: the HTTP upgrade and masked text frames by hand (RFC 6455), so a
 * fault run can open hundreds of sockets that speak as much or as little of socket.io as it likes
 * (nothing, garbage, or a connect packet and a storm of events), without a client library's manners.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { Socket } from 'node:net';

export interface RawWebSocket {
  /** Sends one masked text frame (the payload as is). */
  send(text: string): void;
  close(): void;
  /** Resolves when the server or the network closed it. */
  closed: Promise<void>;
}

/** Opens `/socket.io/?EIO=4&transport=websocket` on the studio at `url`; rejects when the upgrade is refused. */
export function openRawWebSocket(url: string, headers: Record<string, string> = {}): Promise<RawWebSocket> {
  const target = new URL('/socket.io/?EIO=4&transport=websocket', url);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: target.hostname,
      port: target.port,
      path: `${target.pathname}${target.search}`,
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-key': randomBytes(16).toString('base64'),
        'sec-websocket-version': '13',
        ...headers,
      },
    });
    req.setTimeout(10_000, () => req.destroy(new Error('no answer to the upgrade in 10 s')));
    req.on('upgrade', (_res, socket: Socket) => {
      socket.on('error', () => undefined);
      socket.resume(); // whatever the server sends is read and dropped
      const closed = new Promise<void>((done) => socket.once('close', () => done()));
      resolve({
        send(text) {
          if (!socket.destroyed) socket.write(frame(Buffer.from(text)));
        },
        close() {
          socket.destroy();
        },
        closed,
      });
    });
    req.on('response', (res) => {
      res.resume();
      reject(new Error(`upgrade refused: ${res.statusCode}`));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A final, masked text frame. */
function frame(payload: Buffer): Buffer {
  const mask = randomBytes(4);
  const n = payload.length;
  const head =
    n < 126
      ? Buffer.from([0x81, 0x80 | n])
      : n < 65536
        ? Buffer.from([0x81, 0x80 | 126, n >> 8, n & 255])
        : Buffer.concat([Buffer.from([0x81, 0x80 | 127]), u64(n)]);
  const body = Buffer.alloc(n);
  for (let i = 0; i < n; i++) body[i] = payload[i]! ^ mask[i % 4]!;
  return Buffer.concat([head, mask, body]);
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

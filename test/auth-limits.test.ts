/**
 * Authentication before resources (issue 25, items 2, 7 and 8): sockets that never authenticate hold no
 * slot and a wrong token closes the connection at once; half-sent HTTP requests do not keep a health
 * probe out; a socket follows a bounded number of jobs; a short token is refused at start; token guesses
 * are limited per address. Each case was an open hole before. Waits are on state, never on time.
 */
import { promises as fs } from 'node:fs';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createStudio, type Studio } from '../server/app.ts';
import { MAX_SUBSCRIPTIONS } from '../server/http/realtime.ts';
import { parseCli } from '../server/main.ts';
import { api, EventLog, silentLogger, startTestStudio, tempDir } from './support/api-harness.ts';

const TOKEN = 'test-token-0123456789abcdef';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function studioWith(extra: Parameters<typeof startTestStudio>[1]): Promise<Studio> {
  const dir = await tempDir('auth-limits');
  const studio = await startTestStudio(dir, extra);
  cleanup.push(() => fs.rm(dir, { recursive: true, force: true }));
  cleanup.push(() => studio.close());
  return studio;
}

/** A raw engine.io WebSocket that completed its handshake (the open packet) and sent nothing since. */
async function rawSocket(studio: Studio): Promise<{ ws: WebSocket; messages: string[]; closed: Promise<void> }> {
  const ws = new WebSocket(`ws://127.0.0.1:${studio.port}/socket.io/?EIO=4&transport=websocket`);
  cleanup.push(() => ws.terminate());
  const messages: string[] = [];
  const closed = new Promise<void>((resolve) => ws.on('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    ws.on('message', (data) => {
      messages.push(data.toString());
      if (messages.length === 1) resolve();
    });
    ws.on('error', reject);
  });
  expect(messages[0]).toMatch(/^0\{"sid"/);
  return { ws, messages, closed };
}

function connectError(studio: Studio, token: string): Promise<string> {
  return EventLog.connect(studio, { token }).then(
    (log) => {
      log.close();
      return 'connected';
    },
    (err: Error) => err.message,
  );
}

describe('sockets: authentication before a slot', () => {
  it('70 sockets that never authenticate hold none of the 64 slots: the real client still connects', async () => {
    // The deadline for authenticating is long here, so the strangers stay open for the whole test.
    const studio = await studioWith({ token: TOKEN, limits: { socketAuthTimeoutMs: 600_000 } });
    for (let i = 0; i < 70; i++) await rawSocket(studio);
    expect(studio.io.engine.clientsCount).toBe(70);
    const log = await EventLog.connect(studio, { token: TOKEN });
    cleanup.push(() => log.close());
    expect(studio.io.of('/').sockets.size).toBe(1);
  });

  it('the cap counts authenticated sockets', async () => {
    const studio = await studioWith({ token: TOKEN, limits: { maxSockets: 8, socketAuthTimeoutMs: 600_000 } });
    for (let i = 0; i < 12; i++) await rawSocket(studio);
    const logs: EventLog[] = [];
    cleanup.push(() => logs.forEach((l) => l.close()));
    for (let i = 0; i < 8; i++) logs.push(await EventLog.connect(studio, { token: TOKEN }));
    // The ninth is refused, and its connection closed.
    expect(await connectError(studio, TOKEN)).toMatch(/too many connections \(8 open\)/);
    logs.pop()!.close();
    await expect.poll(() => studio.io.of('/').sockets.size).toBe(7);
    logs.push(await EventLog.connect(studio, { token: TOKEN }));
  });

  it('a wrong token gets connect_error and the connection is closed at once, not at the deadline', async () => {
    const studio = await studioWith({ token: TOKEN });
    // Opened first, it meets the deadline for authenticating first: while it is open, that deadline has
    // not passed for the later socket either, so the later one's close came from its wrong token.
    const silent = await rawSocket(studio);
    let silentClosed = false;
    void silent.closed.then(() => (silentClosed = true));
    const { ws, messages, closed } = await rawSocket(studio);
    ws.send('40{"token":"not-the-token-at-all"}');
    await closed;
    expect(silentClosed).toBe(false);
    expect(messages.some((m) => m.startsWith('44') && m.includes('unauthorized'))).toBe(true);
    await expect.poll(() => studio.io.engine.clientsCount).toBe(1);
  });
});

describe('HTTP: half-sent requests', () => {
  it('do not keep a health probe out: the oldest unauthenticated connection makes room', async () => {
    const studio = await studioWith({ limits: { maxHttpConnections: 6 } });
    const strangers: net.Socket[] = [];
    const closed: boolean[] = [];
    for (let i = 0; i < 6; i++) {
      const s = net.connect(studio.port, '127.0.0.1');
      cleanup.push(() => void s.destroy());
      await new Promise<void>((resolve) => s.once('connect', () => resolve()));
      // Headers never finished: no check has run on this connection.
      s.write(`GET /api/health HTTP/1.1\r\nHost: 127.0.0.1:${studio.port}\r\n`);
      s.on('error', () => undefined);
      s.on('close', () => (closed[i] = true));
      strangers.push(s);
    }
    const probe = await api(studio, 'GET', '/api/health');
    expect(probe.status).toBe(200);
    await expect.poll(() => closed[0]).toBe(true);
    expect(closed.slice(1).some(Boolean)).toBe(false);
  });
});

describe('HTTP: bodies before authentication', () => {
  it('a refused request is answered at once and its connection closed, its body never awaited', async () => {
    const studio = await studioWith({ token: TOKEN });
    const s = net.connect(studio.port, '127.0.0.1');
    cleanup.push(() => void s.destroy());
    let text = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (text += d));
    s.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => s.on('close', () => resolve()));
    // Headers promise 100 MB that never come: without the token, nothing of it may be waited for.
    s.write(`POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1:${studio.port}\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{`);
    await closed;
    expect(text).toMatch(/^HTTP\/1\.1 401/);
    expect(text).toMatch(/connection: close/i);
  });
});

describe('job:subscribe', () => {
  it(`follows at most ${MAX_SUBSCRIPTIONS} jobs per socket (oldest dropped) and leaves every room on close`, async () => {
    const studio = await studioWith({});
    const log = await EventLog.connect(studio);
    const id = log.socket.id!;
    const adapter = studio.io.of('/').adapter;
    for (let i = 0; i < 500; i++) log.socket.emit('job:subscribe', `job-${i}`);
    await expect.poll(() => adapter.sids.get(id)?.has('job:job-499')).toBe(true);
    const rooms = [...adapter.sids.get(id)!].filter((r) => r.startsWith('job:'));
    expect(rooms).toHaveLength(MAX_SUBSCRIPTIONS);
    expect(rooms).toContain(`job:job-${500 - MAX_SUBSCRIPTIONS}`);
    expect(rooms).not.toContain(`job:job-${499 - MAX_SUBSCRIPTIONS}`);
    log.close();
    await expect.poll(() => adapter.rooms.size).toBe(0);
  });
});

describe('tokens', () => {
  it('refuses a short token at start, with the reason', async () => {
    const dir = await tempDir('auth-short');
    cleanup.push(() => fs.rm(dir, { recursive: true, force: true }));
    await expect(createStudio({ dataDir: dir, port: 0, token: 'x', logger: silentLogger })).rejects.toThrow(/too short \(1 characters; at least 16\)/);
    expect(() => parseCli(['--token', 'abcdefghijklmno'])).toThrow(/--token: the access token is too short \(15 characters/);
    expect(() => parseCli([], { DUALSTYLE_TOKEN: 'short' })).toThrow(/too short/);
    expect(parseCli(['--token', 'abcdefghijklmnop'])).toMatchObject({ token: 'abcdefghijklmnop' });
  });

  it('limits wrong guesses per address: 429 with Retry-After, sockets refused, until the window passes', async () => {
    let now = 1_000_000;
    const studio = await studioWith({ token: TOKEN, limits: { guesses: { maxWrong: 10, windowMs: 60_000, now: () => now } } });
    const wrong = { authorization: 'Bearer not-the-token-at-all' };
    for (let i = 0; i < 10; i++) {
      now += 1000;
      expect((await api(studio, 'GET', '/api/health', undefined, wrong)).status, `guess ${i + 1}`).toBe(401);
    }
    const refused = await api(studio, 'GET', '/api/health', undefined, wrong);
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('too_many_guesses');
    // The first wrong try (at +1 s) leaves the window at +61 s; now is +10 s.
    expect(refused.headers.get('retry-after')).toBe('51');
    // The right token is refused too while the address is blocked: otherwise guessing would go on.
    expect((await api(studio, 'GET', '/api/health', undefined, { authorization: `Bearer ${TOKEN}` })).status).toBe(429);
    expect(await connectError(studio, TOKEN)).toMatch(/too many wrong access tokens/);
    // A request without any token guesses nothing: it is told what to send, not blocked.
    expect((await api(studio, 'GET', '/api/health')).status).toBe(401);

    now += 51_000;
    expect((await api(studio, 'GET', '/api/health', undefined, { authorization: `Bearer ${TOKEN}` })).status).toBe(200);
    expect(await connectError(studio, TOKEN)).toBe('connected');
  });

  it('counts wrong socket tokens like wrong HTTP tokens', async () => {
    const now = 5_000;
    const studio = await studioWith({ token: TOKEN, limits: { guesses: { maxWrong: 3, windowMs: 60_000, now: () => now } } });
    for (let i = 0; i < 3; i++) expect(await connectError(studio, `wrong-token-${i}-0123456789`)).toMatch(/unauthorized/);
    expect((await api(studio, 'GET', '/api/health', undefined, { authorization: `Bearer ${TOKEN}` })).status).toBe(429);
  });
});

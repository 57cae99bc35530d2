/**
 * What a web page the user happens to visit can do to a studio on localhost (issue: hardening): DNS
 * rebinding (a foreign Host), cross-site fetches and WebSockets (a foreign Origin), simple cross-site
 * requests (no preflight), and sockets that never authenticate. Each case was an open hole before.
 */
import http from 'node:http';
import { promises as fs } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { io as connect } from 'socket.io-client';
import WebSocket from 'ws';
import type { Studio } from '../server/app.ts';
import { api, EventLog, slowGraph, startTestStudio, tempDir } from './support/api-harness.ts';

let dataDir: string;
let studio: Studio;

beforeAll(async () => {
  dataDir = await tempDir('security');
  studio = await startTestStudio(dataDir, { allowHosts: ['studio.lan'] });
});

afterAll(async () => {
  await studio?.close();
  await fs.rm(dataDir, { recursive: true, force: true });
});

/** A raw HTTP request with exactly these headers (fetch will not send a foreign Host). */
function raw(
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: studio.port, method, path, headers, setHost: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const host = () => `127.0.0.1:${studio.port}`;

describe('DNS rebinding: the Host header', () => {
  it.each([
    ['GET', '/api/health'],
    ['GET', '/api/graphs'],
    ['GET', '/'],
    ['PUT', '/api/graphs/stolen'],
  ])('refuses %s %s for a foreign host', async (method, path) => {
    const body = method === 'PUT' ? JSON.stringify({ graph: slowGraph(1, 1) }) : undefined;
    const res = await raw(method, path, { host: `attacker.example:${studio.port}`, 'content-type': 'application/json' }, body);
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body).error).toMatchObject({ code: 'host_not_allowed', message: expect.stringContaining('--allow-host') });
    expect(await fs.readdir(`${dataDir}/graphs`)).not.toContain('stolen.json');
  });

  it('answers loopback names, the bound address and --allow-host names', async () => {
    for (const name of [host(), `localhost:${studio.port}`, `[::1]:${studio.port}`, 'studio.lan:8188', 'STUDIO.LAN']) {
      expect((await raw('GET', '/api/health', { host: name })).status, name).toBe(200);
    }
    // Node itself refuses an HTTP/1.1 request without Host (400).
    expect((await raw('GET', '/api/health', {})).status).toBeGreaterThanOrEqual(400);
    expect((await raw('GET', '/api/health', { host: 'evil@127.0.0.1' })).status).toBe(403);
  });
});

describe('cross-site requests: the Origin header', () => {
  it('refuses a foreign page and the "null" origin, allows the studio and the dev server', async () => {
    for (const origin of ['http://attacker.example', 'null', 'file://', `http://127.0.0.1.attacker.example:${studio.port}`]) {
      const res = await raw('GET', '/api/queue', { host: host(), origin });
      expect(res.status, origin).toBe(403);
      expect(JSON.parse(res.body).error.code).toBe('origin_not_allowed');
    }
    for (const origin of [`http://127.0.0.1:${studio.port}`, 'http://localhost:5173', 'https://studio.lan']) {
      expect((await raw('GET', '/api/queue', { host: host(), origin })).status, origin).toBe(200);
    }
  });

  it('refuses a simple cross-site cancel (text/plain or form, no custom header), and the job keeps running', async () => {
    const submitted = await api(studio, 'POST', '/api/jobs', { graph: slowGraph(1, 400, 5) });
    const id = submitted.body.job.id as string;
    const cancelPath = `/api/jobs/${id}/cancel`;
    try {
      // What a <form> or a no-cors fetch from another page sends: no Origin check can be relied on
      // (the page may be same-site, or the browser may omit it), so the request shape itself is refused.
      for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', undefined]) {
        const res = await raw('POST', cancelPath, { host: host(), ...(type ? { 'content-type': type } : {}) }, type ? 'x' : undefined);
        expect(res.status, type).toBe(403);
        expect(JSON.parse(res.body).error.code).toBe('simple_request_refused');
      }
      expect((await raw('DELETE', `/api/jobs/${id}`, { host: host() })).status).toBe(403);
      expect((await api(studio, 'GET', `/api/jobs/${id}`)).body.job.state).toMatch(/queued|running/);
      // The studio's own client sends the header (or JSON); that cancels.
      const ok = await raw('POST', cancelPath, { host: host(), 'x-requested-with': 'dualstyle' });
      expect(ok.status).toBe(200);
    } finally {
      await api(studio, 'DELETE', `/api/jobs/${id}`);
    }
  });

  it('keeps refusing non-JSON bodies on JSON routes and non-images on uploads', async () => {
    const form = await raw('POST', '/api/jobs', { host: host(), 'content-type': 'application/x-www-form-urlencoded' }, 'graph=1');
    expect(form.status).toBe(403);
    const upload = await raw('POST', '/api/uploads', { host: host(), 'content-type': 'text/plain' }, 'hi');
    expect(upload.status).toBe(403);
  });
});

describe('socket.io', () => {
  function tryConnect(extraHeaders: Record<string, string>, transports: ('websocket' | 'polling')[]): Promise<string> {
    return new Promise((resolve) => {
      const socket = connect(studio.url, { transports, reconnection: false, forceNew: true, extraHeaders, timeout: 5000 });
      socket.once('connect', () => {
        socket.close();
        resolve('connected');
      });
      socket.once('connect_error', (err) => {
        socket.close();
        resolve(err.message);
      });
    });
  }

  it('refuses a handshake from a foreign origin or for a foreign host, on both transports', async () => {
    for (const transport of ['websocket', 'polling'] as const) {
      expect(await tryConnect({ origin: 'http://attacker.example' }, [transport]), transport).not.toBe('connected');
      expect(await tryConnect({ origin: `http://localhost:${studio.port}` }, [transport]), transport).toBe('connected');
    }
    expect(await tryConnect({ host: 'attacker.example' }, ['websocket'])).not.toBe('connected');
    // The polling client cannot set Host; its handshake is a plain GET.
    const handshake = '/socket.io/?EIO=4&transport=polling';
    expect((await raw('GET', handshake, { host: 'attacker.example' })).status).toBe(403);
    expect((await raw('GET', handshake, { host: host(), origin: 'http://attacker.example' })).status).toBe(403);
    expect((await raw('GET', handshake, { host: host() })).status).toBe(200);
  });

  it('a foreign page receives no job events', async () => {
    const received: string[] = [];
    const socket = connect(studio.url, { transports: ['websocket'], reconnection: false, forceNew: true, extraHeaders: { origin: 'http://attacker.example' } });
    socket.onAny((name: string) => received.push(name));
    const res = await api(studio, 'POST', '/api/jobs', { graph: slowGraph(2, 2, 0, 'secret prompt') });
    const log = await EventLog.connect(studio);
    try {
      await log.waitForEnd(res.body.job.id);
      expect(received).toEqual([]);
    } finally {
      log.close();
      socket.close();
    }
  });

  it('caps the number of open sockets', async () => {
    const dir = await tempDir('security-cap');
    const capped = await startTestStudio(dir, { limits: { maxSockets: 2 } });
    const open: EventLog[] = [];
    try {
      open.push(await EventLog.connect(capped), await EventLog.connect(capped));
      await expect(EventLog.connect(capped)).rejects.toThrow();
      open.pop()!.close();
      // Authenticated sockets are counted (realtime.ts): the closed one leaves when the server sees it go.
      await expect.poll(() => capped.io.of('/').sockets.size).toBe(1);
      open.push(await EventLog.connect(capped));
    } finally {
      for (const log of open) log.close();
      await capped.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('closes a socket that never authenticates (token mode) within seconds, not ~45 s', async () => {
    const dir = await tempDir('security-token');
    const locked = await startTestStudio(dir, { token: 's3cret-token-0123456789' });
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${locked.port}/socket.io/?EIO=4&transport=websocket`);
      const started = Date.now();
      const closedAfter = await new Promise<number>((resolve, reject) => {
        ws.on('close', () => resolve(Date.now() - started));
        ws.on('error', reject);
      });
      // socket.io's connectTimeout (5 s here; 45 s before) closes it; pings alone would keep it open.
      expect(closedAfter).toBeLessThan(8000);
    } finally {
      await locked.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('small things', () => {
  it('answers a full queue without a doubled ".;"', async () => {
    const dir = await tempDir('security-full');
    const small = await startTestStudio(dir, { limits: { maxPending: 0 } });
    try {
      const res = await api(small, 'POST', '/api/jobs', { graph: slowGraph(1, 1) });
      // maxPending 0: the first job may still start at once; ask until one is refused.
      const full = res.status === 429 ? res : await api(small, 'POST', '/api/jobs', { graph: slowGraph(2, 1) });
      expect(full.status).toBe(429);
      expect(full.body.error.message).not.toMatch(/\.;/);
      expect(full.body.error.message).toMatch(/queue is full/);
    } finally {
      await small.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('answers non-API requests that match nothing with JSON, not an HTML page', async () => {
    const res = await raw('POST', '/some/editor/route', { host: host(), 'content-type': 'application/json' }, '{}');
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    expect(JSON.parse(res.body).error.code).toBe('not_found');
  });

  it('sends security headers and a Content Security Policy with the editor', async () => {
    const res = await raw('GET', '/', { host: host() });
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('upgrade-insecure-requests');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['cross-origin-resource-policy']).toBe('same-origin');
    expect(res.headers['strict-transport-security']).toBeUndefined();
  });
});

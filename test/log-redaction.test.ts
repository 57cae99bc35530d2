/**
 * The access token never reaches the log (issue 25, item 5): a request that fails on the server is
 * logged with its URL, and a client that authenticates with `?token=` (downloads, <img src>) puts the
 * token in that URL.
 */
import { promises as fs } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { redacted, redactedQuery } from '../server/util/redact.ts';
import { api, startTestStudio, tempDir } from './support/api-harness.ts';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

describe('URLs in the log', () => {
  it('a request with ?token= that fails on the server is logged without the token', async () => {
    const token = 'tok-5f2a9c1e7b3d';
    const dir = await tempDir('log-redaction');
    cleanup.push(() => fs.rm(dir, { recursive: true, force: true }));
    const lines: string[] = [];
    const capture = (msg: string, extra?: unknown) => void lines.push(`${msg} ${extra instanceof Error ? extra.stack : String(extra ?? '')}`);
    const studio = await startTestStudio(dir, { token, logger: { debug: capture, info: capture, warn: capture, error: capture } });
    cleanup.push(() => studio.close());
    // The queue fails inside the server (as a full disk or a lost database would make it): a 500, logged.
    vi.spyOn(studio.jobs, 'queue').mockRejectedValue(new Error('the job store is unreachable'));
    cleanup.push(async () => void vi.restoreAllMocks());

    const res = await api(studio, 'GET', `/api/queue?limit=5&token=${token}&x=1`);
    expect(res.status).toBe(500);
    const logged = lines.join('\n');
    expect(logged).toContain('GET /api/queue?limit=5&token=***&x=1 failed');
    expect(logged).not.toContain(token);
  });

  it('hides secret query values and URL passwords, and keeps the rest', () => {
    expect(redactedQuery('/api/results/a.png?token=abc&size=2')).toBe('/api/results/a.png?token=***&size=2');
    expect(redactedQuery('/x?Access_Token=a&api_key=b&monkey=c&keys=d')).toBe('/x?Access_Token=***&api_key=***&monkey=c&keys=d');
    expect(redactedQuery('/x?%74oken=abc')).toBe('/x?%74oken=***');
    expect(redacted('redis://:pw@host:6379/0?password=pw')).toBe('redis://:***@host:6379/0?password=***');
    expect(redactedQuery('/plain/path')).toBe('/plain/path');
  });
});

/**
 * Access token: required whenever the server listens beyond loopback. Sent as
 * `Authorization: Bearer <token>`, or `?token=` (for <img src> and downloads), or socket.io `auth: { token }`.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Socket } from 'socket.io';
import { ApiError } from './errors.ts';

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Constant-time comparison (hashing first makes the lengths equal). */
export function tokenMatches(expected: string, given: unknown): boolean {
  return typeof given === 'string' && timingSafeEqual(digest(expected), digest(given));
}

function bearer(header: string | undefined): string | undefined {
  const m = header?.match(/^Bearer\s+(.+)$/i);
  return m?.[1]?.trim();
}

export function requireToken(token: string): RequestHandler {
  return (req, _res, next) => {
    const query = req.query.token;
    const given = bearer(req.headers.authorization) ?? (typeof query === 'string' ? query : undefined);
    if (tokenMatches(token, given)) return next();
    next(
      new ApiError(
        401,
        'unauthorized',
        given === undefined
          ? 'an access token is required: send "Authorization: Bearer <token>" or ?token=<token>'
          : 'the access token is wrong',
      ),
    );
  };
}

export function socketTokenCheck(token: string) {
  return (socket: Socket, next: (err?: Error) => void): void => {
    const auth = socket.handshake.auth as { token?: unknown } | undefined;
    const given = auth?.token ?? socket.handshake.query.token;
    if (tokenMatches(token, given)) return next();
    next(new Error('unauthorized: a valid access token is required (socket.io auth: { token })'));
  };
}

const LOOPBACK = new Set(['localhost', '::1', '[::1]', '::ffff:127.0.0.1']);

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK.has(host.toLowerCase()) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

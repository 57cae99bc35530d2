/**
 * Access token: required whenever the server listens beyond loopback. Sent as
 * `Authorization: Bearer <token>`, or `?token=` (for <img src> and downloads), or socket.io `auth: { token }`.
 * A token shorter than MIN_TOKEN_LENGTH is refused at start; wrong tokens are counted per client address
 * (guesses.ts), and an address that guessed too often is refused (429) until its window passes.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Socket as NetSocket } from 'node:net';
import type { RequestHandler } from 'express';
import type { Socket } from 'socket.io';
import { ApiError } from './errors.ts';
import { type GuessLimiter, tooManyGuessesMessage } from './guesses.ts';

/** The shortest access token the server accepts: 16 characters, ~95 bits from `openssl rand -base64 12`. */
export const MIN_TOKEN_LENGTH = 16;

/** Why `token` may not protect the studio, or null when it may. */
export function tokenProblem(token: string): string | null {
  if (token.length >= MIN_TOKEN_LENGTH) return null;
  return (
    `the access token is too short (${token.length} characters; at least ${MIN_TOKEN_LENGTH}): a short token is guessed quickly. ` +
    'Make one with `openssl rand -hex 16`'
  );
}

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

/** The client address a guess is counted against (no proxy is trusted: the peer's address). */
function addressOf(socket: { remoteAddress?: string | undefined }): string {
  return socket.remoteAddress ?? 'unknown';
}

/**
 * Express middleware for /api. A refused request closes its connection (`Connection: close`), so an
 * unauthenticated client cannot keep it by sending its body slowly. `onAuthenticated` hears the
 * connection of every request that passed (the connection guard then stops treating it as a stranger).
 */
export function requireToken(token: string, guesses: GuessLimiter, onAuthenticated: (connection: NetSocket) => void = () => {}): RequestHandler {
  return (req, res, next) => {
    const query = req.query.token;
    const given = bearer(req.headers.authorization) ?? (typeof query === 'string' ? query : undefined);
    const address = addressOf(req.socket);
    const retryAfter = given === undefined ? 0 : guesses.retryAfterSeconds(address);
    if (retryAfter > 0) {
      res.set('Retry-After', String(retryAfter)).set('Connection', 'close');
      return next(new ApiError(429, 'too_many_guesses', tooManyGuessesMessage(retryAfter)));
    }
    if (tokenMatches(token, given)) {
      onAuthenticated(req.socket);
      return next();
    }
    if (given !== undefined) guesses.recordWrong(address);
    res.set('Connection', 'close');
    next(
      new ApiError(
        401,
        'unauthorized',
        given === undefined ? 'an access token is required: send "Authorization: Bearer <token>" or ?token=<token>' : 'the access token is wrong',
      ),
    );
  };
}

/**
 * socket.io middleware: the token of a socket's CONNECT packet, counted against its address like an HTTP
 * guess. A refused socket gets connect_error and its connection is closed at once (`refuse`).
 */
export function socketTokenCheck(token: string, guesses: GuessLimiter, refuse: (socket: Socket, next: (err?: Error) => void, message: string) => void) {
  return (socket: Socket, next: (err?: Error) => void): void => {
    const auth = socket.handshake.auth as { token?: unknown } | undefined;
    const given = auth?.token ?? socket.handshake.query.token;
    const address = socket.handshake.address || 'unknown';
    const retryAfter = given === undefined ? 0 : guesses.retryAfterSeconds(address);
    if (retryAfter > 0) return refuse(socket, next, tooManyGuessesMessage(retryAfter));
    if (tokenMatches(token, given)) return next();
    if (given !== undefined) guesses.recordWrong(address);
    refuse(socket, next, 'unauthorized: a valid access token is required (socket.io auth: { token })');
  };
}

const LOOPBACK = new Set(['localhost', '::1', '[::1]', '::ffff:127.0.0.1']);

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK.has(host.toLowerCase()) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

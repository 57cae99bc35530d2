/**
 * Who may talk to the studio. A local web tool is reachable from every page the user's browser opens,
 * so two things are checked on every request, in every mode (with or without an access token):
 *
 * - `Host` must name this server: loopback names, the address it is bound to, or a name the operator
 *   added with `--allow-host`. A DNS-rebinding page (attacker.example re-pointed at 127.0.0.1) is
 *   "same origin" to the browser, but its requests still say `Host: attacker.example`.
 * - `Origin`, when a browser sends one, must be one of those hosts too (any port: the Vite dev server
 *   on localhost:5173 proxies to us). A foreign page's fetch or WebSocket carries its own origin.
 *
 * And state-changing requests must be ones a foreign page cannot send without a CORS preflight (which
 * we never grant): a JSON or image body, or the `X-Requested-With` header. A `<form>` or a `text/plain`
 * fetch ("simple requests") gets no preflight, so without this a page could cancel the user's job.
 */
import type { IncomingMessage } from 'node:http';
import os from 'node:os';
import type { RequestHandler } from 'express';
import { ApiError } from './errors.ts';

/** The header the studio's client sends with every request; any value will do. */
export const REQUESTED_WITH_HEADER = 'x-requested-with';

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'];
const WILDCARD_ADDRESSES = new Set(['0.0.0.0', '::', '']);

/** A host name as compared: lower case, no IPv6 brackets, no trailing dot. */
function normalizeHost(name: string): string {
  const lower = name.trim().toLowerCase().replace(/\.$/, '');
  return lower.startsWith('[') && lower.endsWith(']') ? lower.slice(1, -1) : lower;
}

/** The host name of a `Host` header ("name:port", "[::1]:8188"); null when it does not parse as one. */
export function hostOfHeader(header: string | undefined): string | null {
  if (!header) return null;
  try {
    const url = new URL(`http://${header}`);
    // "a@b" or "a/b" would parse with a path or credentials: not a Host header.
    if (url.username || url.password || url.pathname !== '/' || url.search || url.hash) return null;
    return normalizeHost(url.hostname);
  } catch {
    return null;
  }
}

/** The host name of an `Origin` header; null for "null" (sandboxed pages, files) and anything not http(s). */
export function hostOfOrigin(origin: string): string | null {
  try {
    const url = new URL(origin);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
    return normalizeHost(url.hostname);
  } catch {
    return null;
  }
}

export class HostAllowList {
  private readonly names: Set<string>;

  constructor(names: Iterable<string>) {
    this.names = new Set([...names].map(normalizeHost).filter((n) => n !== ''));
  }

  /**
   * Loopback names, the bound address, and `extra` (from `--allow-host`). Bound to every interface
   * (0.0.0.0, ::), the machine's own addresses and name are added, since that is how others reach it.
   */
  static forServer(boundHost: string, extra: readonly string[] = []): HostAllowList {
    const names = [...LOOPBACK_NAMES, boundHost, ...extra];
    if (WILDCARD_ADDRESSES.has(normalizeHost(boundHost))) {
      names.push(os.hostname());
      for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) names.push(a.address);
    }
    return new HostAllowList(names);
  }

  allows(hostname: string): boolean {
    return this.names.has(normalizeHost(hostname));
  }

  /** For messages: the names, loopback first. */
  list(): string[] {
    return [...this.names];
  }
}

export interface Refusal {
  status: number;
  code: string;
  message: string;
}

/** Why a request must be refused for its Host or Origin header, or null when it may proceed. */
export function checkHostAndOrigin(req: Pick<IncomingMessage, 'headers'>, allowed: HostAllowList): Refusal | null {
  const hostHeader = req.headers.host;
  const host = hostOfHeader(hostHeader);
  if (host === null || !allowed.allows(host)) {
    const what = hostHeader ? `host ${JSON.stringify(hostHeader)}` : 'a request without a Host header';
    return {
      status: 403,
      code: 'host_not_allowed',
      message:
        `refused ${what}: the studio answers to ${allowed.list().join(', ')} ` +
        '(a web page that re-points its own domain at this machine must not reach it); to use another name, start the studio with --allow-host NAME',
    };
  }
  const origin = req.headers.origin;
  if (origin !== undefined) {
    const from = hostOfOrigin(origin);
    if (from === null || !allowed.allows(from)) {
      return {
        status: 403,
        code: 'origin_not_allowed',
        message: `refused a request from the web page at ${JSON.stringify(origin)}: only the studio's own pages may use it (see --allow-host)`,
      };
    }
  }
  return null;
}

/** Express middleware: every path, before anything else runs. */
export function hostAndOriginGuard(allowed: HostAllowList): RequestHandler {
  return (req, _res, next) => {
    const refusal = checkHostAndOrigin(req, allowed);
    next(refusal ? new ApiError(refusal.status, refusal.code, refusal.message) : undefined);
  };
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** Content types a page may send cross-site without a preflight (the CORS "simple" ones). */
const SIMPLE_TYPES = new Set(['application/x-www-form-urlencoded', 'multipart/form-data', 'text/plain']);

/**
 * State-changing requests (POST, PUT, PATCH, DELETE) need a body type a form cannot send, or the
 * X-Requested-With header: either makes a cross-site browser request preflighted, and refused.
 */
export const refuseSimpleRequests: RequestHandler = (req, _res, next) => {
  if (SAFE_METHODS.has(req.method) || req.headers[REQUESTED_WITH_HEADER] !== undefined) return next();
  const type = req.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
  if (type && !SIMPLE_TYPES.has(type)) return next();
  next(
    new ApiError(
      403,
      'simple_request_refused',
      `refused ${req.method} with ${type ? `Content-Type ${type}` : 'no Content-Type'}: a web page on another site can send such a request, ` +
        `so the studio requires a JSON body (Content-Type: application/json) or the header "X-Requested-With: dualstyle"`,
    ),
  );
};

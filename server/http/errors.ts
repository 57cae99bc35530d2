/**
 * JSON errors for the API: every failure is `{ error: { code, message, issues? } }` with a 4xx status
 * for bad input. Nothing a client sends may produce a 500 or an HTML page.
 */
import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { ValidationIssue } from '../protocol/graph.ts';
import { isRedisUnreachable } from '../executor/redis-records.ts';
import { noSpaceError, StoreError } from '../store/errors.ts';
import { formatBytes } from '../util/bytes.ts';
import { redactedQuery } from '../util/redact.ts';

export interface ApiErrorBody {
  error: { code: string; message: string; issues?: ValidationIssue[] };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly issues?: ValidationIssue[],
  ) {
    super(message);
    this.name = 'ApiError';
  }

  body(): ApiErrorBody {
    return { error: { code: this.code, message: this.message, ...(this.issues ? { issues: this.issues } : {}) } };
  }
}

const STORE_STATUS: Record<StoreError['code'], number> = {
  invalid_name: 400,
  not_found: 404,
  read_only: 409,
  corrupt: 422,
  invalid_graph: 400,
  unsupported_image: 400,
  image_too_large: 413,
  quota_exceeded: 507,
  no_space: 507,
};

/** body-parser errors carry `type` and `status`; see body-parser's README. */
interface BodyParserError extends Error {
  type?: string;
  status?: number;
  limit?: number;
}

/** Turns anything thrown by a route or a body parser into a JSON error response. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof StoreError) return new ApiError(STORE_STATUS[err.code], err.code, err.message);
  const noSpace = noSpaceError(err, 'this');
  if (noSpace instanceof StoreError) return new ApiError(507, noSpace.code, noSpace.message);
  if (isRedisUnreachable(err)) {
    return new ApiError(
      503,
      'queue_unavailable',
      `the job queue's Redis cannot be reached (${(err as Error).message}): jobs cannot be queued, listed or cancelled until it is back; /api/health says when`,
    );
  }
  const e = err as BodyParserError;
  switch (e?.type) {
    case 'entity.parse.failed':
      return new ApiError(400, 'malformed_json', `malformed JSON: ${e.message}`);
    case 'entity.too.large':
      return new ApiError(413, 'body_too_large', `request body too large (limit ${formatBytes(e.limit ?? 0)})`);
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new ApiError(415, 'unsupported_encoding', e.message);
    case 'request.aborted':
      return new ApiError(400, 'request_aborted', 'the request was aborted before its body arrived');
    case 'request.size.invalid':
      return new ApiError(400, 'bad_request', 'request size did not match Content-Length');
  }
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) {
    return new ApiError(e.status, 'bad_request', e.message);
  }
  return new ApiError(500, 'internal', 'internal server error');
}

export function errorHandler(log: (msg: string, err: unknown) => void): ErrorRequestHandler {
  return (err, req, res, next) => {
    if (res.headersSent) return next(err);
    const apiError = toApiError(err);
    // The URL as logged: never with the access token a client put in it (?token=).
    if (apiError.status >= 500) log(`${req.method} ${redactedQuery(req.originalUrl)} failed`, err);
    res.status(apiError.status).json(apiError.body());
  };
}

/** Anything no route took (a POST to the editor's paths, say): a JSON 404, not express's HTML page. */
export const notFound: RequestHandler = (req, res) => {
  res.status(404).json(new ApiError(404, 'not_found', `nothing at ${req.method} ${req.path}`).body());
};

/** Unknown /api routes: JSON 404, never the client's index.html. */
export const apiNotFound: RequestHandler = (req, res) => {
  res.status(404).json(new ApiError(404, 'not_found', `no API route ${req.method} ${req.originalUrl.split('?')[0]}`).body());
};

/** Small helpers for reading request bodies and parameters. */
import type { Request } from 'express';
import { ApiError } from './errors.ts';

/** The parsed JSON body as an object, or a 400 that says what was expected. */
export function jsonObject(req: Request, expected: string): Record<string, unknown> {
  const body: unknown = req.body;
  if (body === undefined || !req.is('application/json')) {
    throw new ApiError(400, 'bad_request', `expected a JSON body ${expected} with Content-Type: application/json`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ApiError(400, 'bad_request', `expected a JSON object ${expected}, got ${Array.isArray(body) ? 'an array' : typeof body}`);
  }
  return body as Record<string, unknown>;
}

/** A single route parameter (express 5 gives wildcard parameters as arrays). */
export function param(req: Request, name: string): string {
  const v: unknown = (req.params as Record<string, unknown>)[name];
  return Array.isArray(v) ? v.join('/') : String(v ?? '');
}

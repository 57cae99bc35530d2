/**
 * Problems with a graph file's structure in words a user understands: a zod issue becomes
 * "Node "m1" → params.sharpness must be ≤ 200, got 500", tied to its node and field. Shared by the
 * server's validation and the editor's file reading, so both say the same thing about the same file.
 */
import type { z } from 'zod';
import type { ValidationIssue } from './graph.ts';
import { describeValue } from './graph-migrate.ts';

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A zod issue about the file's structure as a ValidationIssue with a readable subject and path. */
export function schemaIssue(zi: z.core.$ZodIssue, raw: Record<string, unknown>): ValidationIssue {
  const path = zi.path;
  const value = valueAt(raw, path);
  let nodeId: string | undefined;
  let subject = pathString(path) || 'The graph';
  if (path[0] === 'nodes' && typeof path[1] === 'number') {
    const node = valueAt(raw, path.slice(0, 2));
    if (isRecord(node) && typeof node.id === 'string' && path[2] !== 'id') {
      nodeId = node.id;
      const rest = pathString(path.slice(2));
      subject = `Node "${node.id}"${rest ? ` → ${rest}` : ''}`;
    }
  }
  return {
    code: 'schema',
    ...(nodeId !== undefined ? { nodeId } : {}),
    ...(path.length ? { field: pathString(path) } : {}),
    message: `${subject} ${predicate(zi, value)}`,
  };
}

/** The part of a message after the subject: "must be ≤ 200, got 500". */
export function predicate(zi: z.core.$ZodIssue, value: unknown): string {
  const got = describeValue(value);
  switch (zi.code) {
    case 'too_big': {
      const limit = Number(zi.maximum);
      if (zi.origin === 'string') return `must be at most ${limit} characters long, got ${String(value).length}`;
      if (zi.origin === 'array' || zi.origin === 'set') return `must have at most ${limit} items, got ${sizeOf(value)}`;
      return `must be ${zi.inclusive === false ? '<' : '≤'} ${limit}, got ${got}`;
    }
    case 'too_small': {
      const limit = Number(zi.minimum);
      if (zi.origin === 'string') {
        return limit === 1 ? 'must not be empty' : `must be at least ${limit} characters long, got ${String(value).length}`;
      }
      if (zi.origin === 'array' || zi.origin === 'set') return `must have at least ${limit} items, got ${sizeOf(value)}`;
      return `must be ${zi.inclusive === false ? '>' : '≥'} ${limit}, got ${got}`;
    }
    case 'invalid_type':
      if (value === undefined) return 'is required';
      return `must be ${typeName(zi.expected)}, got ${kindOf(value)}${kindDetail(value)}`;
    case 'invalid_value':
      if (zi.values.length === 1) return `must be ${JSON.stringify(zi.values[0])}, got ${got}`;
      return `must be one of ${zi.values.map((v) => JSON.stringify(v)).join(', ')}, got ${got}`;
    case 'not_multiple_of':
      return `must be a multiple of ${Number(zi.divisor)}, got ${got}`;
    case 'unrecognized_keys':
      return `has unknown field${zi.keys.length > 1 ? 's' : ''} ${zi.keys.map((k) => `"${k}"`).join(', ')}`;
    case 'invalid_format':
      // Pattern checks usually carry an author-written message ("may use letters, digits..."); keep it.
      return zi.format === 'regex' ? `is not valid: ${zi.message}` : `must be a valid ${zi.format}, got ${got}`;
    default:
      return `is not valid: ${zi.message}`;
  }
}

function typeName(expected: string): string {
  switch (expected) {
    case 'number':
      return 'a number';
    case 'int':
    case 'bigint':
      return 'a whole number';
    case 'string':
      return 'text';
    case 'boolean':
      return 'true or false';
    case 'array':
    case 'tuple':
      return 'a list';
    case 'object':
    case 'record':
    case 'map':
      return 'an object';
    default:
      return expected;
  }
}

/** JSON kind of a value as a user sees it: string, number, boolean, list, object, null. */
function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'list';
  return typeof v;
}

function kindDetail(v: unknown): string {
  if (typeof v === 'string') return ` ${JSON.stringify(v.length > 40 ? v.slice(0, 37) + '...' : v)}`;
  if (typeof v === 'number' || typeof v === 'boolean') return ` ${v}`;
  return '';
}

function sizeOf(v: unknown): number | string {
  if (Array.isArray(v)) return v.length;
  if (v instanceof Set) return v.size;
  return '?';
}

/** Turns a zod issue about the file's structure into a ValidationIssue with a readable path. */
export function pathString(path: readonly PropertyKey[]): string {
  let s = '';
  for (const p of path) {
    if (typeof p === 'number') s += `[${p}]`;
    else s += s ? `.${String(p)}` : String(p);
  }
  return s;
}

export function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = root;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

/**
 * A node's parameters checked against its zod schema and its own cross-parameter `check`, each problem
 * in words a user understands ("Mask → sharpness must be ≤ 200, got 500"), tied to the field.
 */
import type { z } from 'zod';
import type { ValidationIssue } from '../protocol/graph.ts';
import type { AnyNodeDefinition } from '../../nodes/types.ts';
import type { GraphNode } from '../protocol/graph.ts';
import { describeValue } from './migrate.ts';

export interface ParamCheckOptions {
  /** Report parameters the node type does not have ('param_invalid') instead of dropping them. */
  strictParams?: boolean;
}

/** The parsed parameters (defaults filled in), or undefined after pushing what is wrong onto `issues`. */
export function checkParams(
  node: GraphNode,
  def: AnyNodeDefinition,
  name: string,
  opts: ParamCheckOptions,
  issues: ValidationIssue[],
): Record<string, unknown> | undefined {
  const schema = def.params as z.ZodObject;
  if (opts.strictParams) {
    for (const key of Object.keys(node.params)) {
      if (Object.hasOwn(schema.shape, key)) continue;
      issues.push({
        code: 'param_invalid',
        nodeId: node.id,
        field: key,
        message: `${name} has no parameter "${key}" (it has ${listOrNone(Object.keys(schema.shape))}).`,
      });
    }
  }
  let result: ReturnType<typeof schema.safeParse>;
  try {
    result = schema.safeParse(node.params);
  } catch (err) {
    issues.push({ code: 'param_invalid', nodeId: node.id, message: `${name}: parameters could not be checked: ${(err as Error).message}` });
    return undefined;
  }
  if (!result.success) {
    for (const zi of result.error.issues) {
      const field = pathString(zi.path);
      const value = valueAt(node.params, zi.path);
      issues.push({ code: paramCode(zi, value), nodeId: node.id, field, message: `${name} → ${field} ${predicate(zi, value)}` });
    }
    return undefined;
  }
  const parsed = result.data as Record<string, unknown>;
  if (def.check) {
    let problems: { field: string; message: string }[];
    try {
      problems = def.check(parsed);
    } catch (err) {
      problems = [{ field: '', message: `could not be checked: ${(err as Error).message}` }];
    }
    for (const p of problems) {
      const sep = /^[A-Z]/.test(p.message) ? ': ' : ' ';
      issues.push({
        code: 'custom',
        nodeId: node.id,
        ...(p.field ? { field: p.field } : {}),
        message: p.field ? `${name} → ${p.field}${sep}${p.message}` : `${name}: ${p.message}`,
      });
    }
  }
  return parsed;
}

function paramCode(zi: z.core.$ZodIssue, value: unknown): ValidationIssue['code'] {
  switch (zi.code) {
    case 'too_big':
    case 'too_small':
      return 'param_out_of_range';
    case 'invalid_type':
      return value === undefined ? 'param_invalid' : 'param_wrong_type';
    default:
      return 'param_invalid';
  }
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

export function listOrNone(names: string[]): string {
  return names.length ? names.map((n) => `"${n}"`).join(', ') : 'none';
}

/**
 * How deep and how large a parsed JSON value is, measured without recursion and without serializing
 * it, and stopping as soon as a limit is passed. Free-form parts of a graph (meta, node parameters)
 * are bounded with it: 8 KB of "[[[[…" nested 4,000 deep is cheap to parse but, pretty-printed,
 * was a 32 MB file, and a few more levels overflow JSON.stringify's recursion.
 */

export interface JsonLimits {
  /** Most levels of objects and arrays (a scalar is depth 0, `{}` is 1). */
  maxDepth: number;
  /** Most bytes the value takes as compact JSON (counted in UTF-16 units: close enough for a limit). */
  maxBytes: number;
}

export type JsonExtentProblem = { kind: 'depth' | 'bytes'; limit: number } | null;

/** The first limit `value` breaks, or null. Work is bounded by the limits, not by the value's size. */
export function jsonExtentProblem(value: unknown, limits: JsonLimits): JsonExtentProblem {
  let bytes = 0;
  const stack: { v: unknown; depth: number }[] = [{ v: value, depth: 0 }];
  while (stack.length > 0) {
    const { v, depth } = stack.pop()!;
    if (v === null || typeof v !== 'object') {
      bytes += scalarBytes(v);
    } else {
      if (depth + 1 > limits.maxDepth) return { kind: 'depth', limit: limits.maxDepth };
      if (Array.isArray(v)) {
        bytes += 2 + Math.max(0, v.length - 1);
        for (const item of v) stack.push({ v: item, depth: depth + 1 });
      } else {
        const keys = Object.keys(v);
        bytes += 2 + Math.max(0, keys.length - 1);
        for (const k of keys) {
          bytes += k.length + 3; // "key":
          stack.push({ v: (v as Record<string, unknown>)[k], depth: depth + 1 });
        }
      }
    }
    if (bytes > limits.maxBytes) return { kind: 'bytes', limit: limits.maxBytes };
  }
  return null;
}

function scalarBytes(v: unknown): number {
  switch (typeof v) {
    case 'string':
      return v.length + 2;
    case 'number':
      return String(v).length;
    case 'boolean':
      return v ? 4 : 5;
    default:
      return 4; // null (undefined and functions are not JSON; count them like null)
  }
}

/** A sentence for a broken limit, e.g. "is nested too deeply (more than 32 levels)". */
export function describeExtentProblem(problem: NonNullable<JsonExtentProblem>): string {
  return problem.kind === 'depth'
    ? `is nested too deeply (more than ${problem.limit} levels)`
    : `is too large (more than ${Math.round(problem.limit / 1024)} KiB as JSON)`;
}

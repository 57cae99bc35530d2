/**
 * A node's parameters checked against its zod schema and its own cross-parameter `check`, each problem
 * in words a user understands ("Mask → sharpness must be ≤ 200, got 500"), tied to the field.
 */
import type { z } from 'zod';
import type { ValidationIssue } from '../protocol/graph.ts';
import type { AnyNodeDefinition } from '../../nodes/types.ts';
import type { GraphNode } from '../protocol/graph.ts';
import { pathString, predicate, valueAt } from '../protocol/issue-words.ts';

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

export function listOrNone(names: string[]): string {
  return names.length ? names.map((n) => `"${n}"`).join(', ') : 'none';
}

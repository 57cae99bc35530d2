/**
 * A run is validated once. The job submission validates its graph; the runner in the same process is
 * then handed that graph (as the job store gives it back) and finds it here by its content instead of
 * validating it again. A graph is remembered under the content it came in as and the content it came
 * out as (migrated, defaults filled in), each with the options it was checked under; the catalog is
 * fixed for the memo's life, so equal content means an equal answer. Only graphs that passed are
 * remembered, the most recent few.
 */
import { createHash } from 'node:crypto';
import type { NodeCatalog } from '../catalog.ts';
import type { ValidationResult } from '../protocol/graph.ts';
import { validateGraph, type ValidateOptions } from './validate.ts';

export type MemoOptions = Pick<ValidateOptions, 'requireOutput'>;

export class ValidatedGraphs {
  /** Content key → the passing result as JSON (each hit gets a graph of its own to keep). Insertion order is recency. */
  private readonly passed = new Map<string, string>();

  constructor(
    private readonly catalog: NodeCatalog,
    private readonly maxRemembered = 32,
  ) {}

  /** validateGraph(raw, catalog, opts), answered from memory when this content passed before under the same options. */
  validate(raw: unknown, opts: MemoOptions = {}): ValidationResult {
    const requireOutput = opts.requireOutput !== false;
    const key = contentKey(raw, requireOutput);
    const hit = key === undefined ? undefined : this.passed.get(key);
    if (hit !== undefined && key !== undefined) {
      this.passed.delete(key);
      this.passed.set(key, hit);
      return JSON.parse(hit) as ValidationResult;
    }
    const result = validateGraph(raw, this.catalog, { requireOutput });
    if (result.ok && result.graph) {
      const json = JSON.stringify(result);
      for (const k of [key, contentKey(result.graph, requireOutput)]) if (k !== undefined) this.remember(k, json);
    }
    return result;
  }

  private remember(key: string, json: string): void {
    this.passed.delete(key);
    this.passed.set(key, json);
    while (this.passed.size > this.maxRemembered) this.passed.delete(this.passed.keys().next().value as string);
  }
}

/** A digest of the graph as given (its JSON text, or the text it came in as) and the options; undefined when it has no JSON form. */
function contentKey(raw: unknown, requireOutput: boolean): string | undefined {
  let text: string | undefined;
  try {
    text = typeof raw === 'string' ? raw : JSON.stringify(raw);
  } catch {
    return undefined; // a cycle or a BigInt: not from the API, not worth remembering
  }
  if (text === undefined) return undefined;
  return createHash('sha256')
    .update(requireOutput ? 'outputs|' : 'any|')
    .update(text)
    .digest('hex');
}

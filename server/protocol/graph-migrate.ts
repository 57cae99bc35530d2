/**
 * Forward migration of graph files. A file saved by an older format version is lifted one version at
 * a time (v1 → v2 → ... → GRAPH_VERSION) by the migration registered for its version; a file from a
 * newer version is refused with a message that says so, rather than half-read.
 */
import { GRAPH_FORMAT, GRAPH_VERSION, type ValidationIssue } from '../protocol/graph.ts';

/** Lifts a graph object of version `from` to version `from + 1` (it must set `version` itself). */
export type Migration = (graph: Record<string, unknown>) => Record<string, unknown>;

/** Migrations keyed by the version they read. */
export type MigrationTable = Readonly<Record<number, Migration>>;

/**
 * The project's migrations. Version 1 is current, so there are none yet; when the format changes to
 * v2, add `1: (g) => ({ ...g, version: 2, ... })` here and bump GRAPH_VERSION.
 */
export const MIGRATIONS: MigrationTable = {};

export interface MigrateResult {
  /** The graph lifted to `targetVersion`, when migration succeeded (not yet schema-checked). */
  graph?: unknown;
  issues: ValidationIssue[];
  /** The version the file was saved with, when it could be read. */
  fromVersion?: number;
}

/**
 * Checks the format tag and version of a parsed graph file and migrates it forward.
 * `migrations` and `targetVersion` are injectable so the mechanism can be tested before a real v2.
 */
export function migrateGraph(raw: unknown, migrations: MigrationTable = MIGRATIONS, targetVersion: number = GRAPH_VERSION): MigrateResult {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return fail('invalid_format', `A graph file must be a JSON object, got ${describeValue(raw)}.`);
  }
  const obj = raw as Record<string, unknown>;
  if (obj.format !== GRAPH_FORMAT) {
    // Only text is quoted: JSON.stringify of a value nested thousands deep overflows the stack.
    const got =
      obj.format === undefined
        ? 'no "format" field'
        : `format ${typeof obj.format === 'string' ? JSON.stringify(obj.format.slice(0, 60)) : describeValue(obj.format)}`;
    return fail('invalid_format', `This is not a Dual Style Studio graph (expected format "${GRAPH_FORMAT}", found ${got}).`, 'format');
  }
  const version = obj.version;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) {
    return fail('invalid_format', `The graph's "version" must be a whole number ≥ 1, got ${describeValue(version)}.`, 'version');
  }
  if (version > targetVersion) {
    return {
      issues: [
        {
          code: 'unsupported_version',
          field: 'version',
          message:
            `This graph was saved by a newer version of Dual Style Studio (format version ${version}); ` + `this version reads up to version ${targetVersion}.`,
        },
      ],
      fromVersion: version,
    };
  }

  let graph: Record<string, unknown> = obj;
  for (let v = version; v < targetVersion; v++) {
    const step = migrations[v];
    if (!step) {
      return {
        issues: [
          {
            code: 'unsupported_version',
            field: 'version',
            message: `Graphs of format version ${version} can no longer be read: no migration from version ${v} to ${v + 1}.`,
          },
        ],
        fromVersion: version,
      };
    }
    try {
      graph = step(structuredClone(graph));
    } catch (err) {
      return fail('invalid_format', `Could not upgrade the graph from format version ${v} to ${v + 1}: ${(err as Error).message}`, 'version', version);
    }
    if (graph.version !== v + 1) {
      // A migration that forgets to bump the version would loop forever in a careless caller; say so.
      return fail('invalid_format', `Upgrading the graph from format version ${v} did not produce version ${v + 1}.`, 'version', version);
    }
  }
  return { graph, issues: [], fromVersion: version };
}

function fail(code: ValidationIssue['code'], message: string, field?: string, fromVersion?: number): MigrateResult {
  return { issues: [{ code, message, ...(field ? { field } : {}) }], ...(fromVersion ? { fromVersion } : {}) };
}

/** Short human description of a JSON value's kind, for messages. */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return v.length > 40 ? `text "${v.slice(0, 37)}..."` : `text ${JSON.stringify(v)}`;
  if (typeof v === 'number') return String(v);
  if (typeof v === 'boolean') return String(v);
  return typeof v === 'object' ? 'an object' : typeof v;
}

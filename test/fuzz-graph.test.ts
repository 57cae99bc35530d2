/**
 * Fuzz: graph JSON (issue: hardening). Generated graph files, mostly well formed with something wrong,
 * some not graphs at all, some nested thousands deep, go through validation with the test and the
 * real node catalogs, and the saveable ones through the store. Properties: validation never throws and
 * is stable (a validated graph validates to itself), its free-form parts are bounded, and the store
 * writes a graph at its own size and reads it back unchanged.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { nodeDefinitions } from '../nodes/index.ts';
import { createCatalog } from '../server/catalog.ts';
import { validateGraph } from '../server/graph/validate.ts';
import { META_LIMITS, PARAMS_LIMITS } from '../server/protocol/graph.ts';
import { jsonExtentProblem } from '../server/protocol/json-extent.ts';
import { GraphStore } from '../server/store/graphs.ts';
import { casesFor, FUZZ_SEED, FuzzReport, graphJson } from './support/fuzz.ts';
import { testNodes } from './support/test-nodes.ts';

const catalogs = { test: createCatalog(testNodes), real: createCatalog(nodeDefinitions) };
const types = [...new Set([...catalogs.test.keys(), ...catalogs.real.keys()])];
let dir: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dualstyle-fuzz-graph-'));
});

afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

it('validation never throws, is stable, and bounds what it accepts', () => {
  const report = new FuzzReport('graph validation');
  try {
    fc.assert(
      fc.property(graphJson(types), fc.constantFrom('test', 'real'), fc.boolean(), (raw, which, requireOutput) => {
        const catalog = catalogs[which as 'test' | 'real'];
        let result;
        try {
          result = validateGraph(raw, catalog, { requireOutput });
        } catch (err) {
          report.crashes.push(String(err));
          throw err;
        }
        report.count(result.ok ? 'ok' : result.graph ? 'issues' : 'refused');
        expect(result.ok).toBe(result.issues.length === 0);
        for (const issue of result.issues) expect(typeof issue.message).toBe('string');
        if (!result.graph) return;
        expect(jsonExtentProblem(result.graph.meta, META_LIMITS)).toBeNull();
        for (const node of result.graph.nodes) expect(jsonExtentProblem(node.params, PARAMS_LIMITS)).toBeNull();
        // What validation gives back validates to itself, through JSON (what the store and the client see).
        const again = validateGraph(JSON.parse(JSON.stringify(result.graph)), catalog, { requireOutput });
        expect(again.graph).toEqual(result.graph);
        expect(again.issues).toEqual(result.issues);
      }),
      { numRuns: casesFor(0.4), seed: FUZZ_SEED },
    );
  } finally {
    // Printed whatever happens: the histogram says what the fuzzer reached before a failure.
    console.log(report.line());
  }
  expect(report.crashes).toEqual([]);
});

it('the store writes a saveable graph at its own size and reads it back unchanged', async () => {
  const store = new GraphStore(path.join(dir, 'templates'), path.join(dir, 'user'), { maxGraphs: 100_000, maxTotalBytes: 2 ** 40 });
  const report = new FuzzReport('graph store');
  try {
    await fc.assert(
      fc.asyncProperty(graphJson(types), async (raw) => {
        const result = validateGraph(raw, catalogs.test, { requireOutput: false });
        if (!result.graph) {
          report.count('not saveable');
          return;
        }
        await store.save('fuzzed', result.graph);
        report.count('saved');
        const text = await fs.readFile(path.join(dir, 'user', 'fuzzed.json'), 'utf8');
        expect(text.length).toBe(JSON.stringify(result.graph).length + 1);
        expect((await store.read('fuzzed')).graph).toEqual(JSON.parse(JSON.stringify(result.graph)));
      }),
      { numRuns: casesFor(0.05), seed: FUZZ_SEED },
    );
  } finally {
    // Printed whatever happens: the histogram says what the fuzzer reached before a failure.
    console.log(report.line());
  }
  expect((await fs.readdir(path.join(dir, 'user'))).filter((f) => f.endsWith('.tmp'))).toEqual([]);
});

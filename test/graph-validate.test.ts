import { describe, expect, it } from 'vitest';
import { createCatalog } from '../server/catalog.ts';
import { formatIssue, summarizeIssues, validateGraph } from '../server/graph/validate.ts';
import type { ValidationIssue } from '../server/protocol/graph.ts';
import { graphJson, numberChain, testNodes } from './support/test-nodes.ts';

const catalog = createCatalog(testNodes);

function only(issues: ValidationIssue[], code: ValidationIssue['code']): ValidationIssue {
  const found = issues.filter((i) => i.code === code);
  expect(found, `expected one "${code}" issue in ${JSON.stringify(issues, null, 1)}`).toHaveLength(1);
  return found[0];
}

/** Every problem found, also those of nodes no output needs (warnings: a run leaves those nodes out). */
function problems(r: { issues: ValidationIssue[]; warnings: ValidationIssue[] }): ValidationIssue[] {
  return [...r.issues, ...r.warnings];
}

describe('validateGraph', () => {
  it('accepts a valid graph and fills parameter defaults', () => {
    const r = validateGraph(numberChain(), catalog);
    expect(r.issues).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.graph!.nodes.find((n) => n.id === 'b')!.params).toEqual({ offset: 1 });
    const withMask = numberChain();
    withMask.nodes.unshift({ id: 'm', type: 'Mask', params: {}, position: { x: 0, y: 0 } });
    const mask = validateGraph(withMask, catalog);
    expect(mask.ok).toBe(true);
    expect(mask.graph!.nodes[0].params).toEqual({ shape: 'logistic', direction: 'left-right', sharpness: 20, invert: false });
  });

  it('reads a graph given as JSON text, and reports text that is not JSON', () => {
    expect(validateGraph(JSON.stringify(numberChain()), catalog).ok).toBe(true);
    const r = validateGraph('{"format": ', catalog);
    expect(r.ok).toBe(false);
    expect(r.issues[0].code).toBe('invalid_json');
    expect(r.issues[0].message).toMatch(/not valid JSON/);
  });

  it('duplicate node id', () => {
    const g = numberChain();
    g.nodes.push({ id: 'a', type: 'Mask', params: {}, position: { x: 0, y: 0 } });
    const i = only(validateGraph(g, catalog).issues, 'duplicate_node_id');
    expect(i.nodeId).toBe('a');
    expect(i.field).toBe('id');
    expect(i.message).toBe('Two nodes share the id "a" (Constant and Mask); node ids must be unique.');
  });

  it('unknown node type, with a suggestion for a near miss', () => {
    const g = numberChain();
    g.nodes.push({ id: 'x', type: 'Invret', params: {}, position: { x: 0, y: 0 } });
    const i = only(validateGraph(g, catalog).issues, 'unknown_node_type');
    expect(i).toMatchObject({ nodeId: 'x', field: 'type' });
    expect(i.message).toBe('Node "x" has unknown type "Invret"; did you mean "Invert"?');
  });

  it('unknown input and unknown output names on an edge', () => {
    const g = numberChain();
    g.edges.push({ from: { node: 'a', output: 'val' }, to: { node: 'b', input: 'c' } });
    const issues = validateGraph(g, catalog).issues;
    const out = only(issues, 'unknown_output');
    expect(out).toMatchObject({ nodeId: 'a', field: 'val' });
    expect(out.message).toBe('Constant has no output "val" (it has "value").');
    const inp = only(issues, 'unknown_input');
    expect(inp).toMatchObject({ nodeId: 'b', field: 'c' });
    expect(inp.message).toBe('Add has no input "c" (it has "a", "b").');
  });

  it('socket names that are Object.prototype members are unknown, not a type mismatch', () => {
    const g = numberChain();
    g.edges.push({ from: { node: 'a', output: '__proto__' }, to: { node: 'b', input: 'toString' } });
    const issues = validateGraph(g, catalog).issues;
    expect(only(issues, 'unknown_output')).toMatchObject({ nodeId: 'a', field: '__proto__' });
    expect(only(issues, 'unknown_input')).toMatchObject({ nodeId: 'b', field: 'toString' });
    expect(issues.filter((i) => i.code === 'type_mismatch')).toEqual([]);
  });

  it('missing required input (optional inputs may stay unconnected)', () => {
    const g = numberChain();
    g.edges = g.edges.filter((e) => e.to.node !== 'b');
    const i = only(validateGraph(g, catalog).issues, 'missing_input');
    expect(i).toMatchObject({ nodeId: 'b', field: 'a' });
    expect(i.message).toBe('Add → a is not connected; it needs a Number input.');
  });

  it('a dangling node (feeds no output) does not stop a run: its problems are warnings; a needed node keeps its errors', () => {
    // "loose" has no input and a bad parameter, and nothing it makes reaches "out".
    const g = numberChain();
    g.nodes.push({ id: 'loose', type: 'Add', params: { offset: 'lots' }, position: { x: 0, y: 0 } });
    const r = validateGraph(g, catalog);
    expect(r.ok).toBe(true);
    expect(r.issues).toEqual([]);
    expect(r.warnings.map((i) => `${i.nodeId}:${i.code}`).sort()).toEqual(['loose:missing_input', 'loose:param_wrong_type'].sort());
    // The same problems on a node the output needs stop the run.
    const needed = numberChain();
    needed.edges = needed.edges.filter((e) => e.to.node !== 'b');
    const n = validateGraph(needed, catalog);
    expect(n.ok).toBe(false);
    expect(only(n.issues, 'missing_input').nodeId).toBe('b');
    expect(n.warnings).toEqual([]);
    // "a" now feeds nothing: left out, and without problems it is not worth a word.
    expect(n.issues.some((i) => i.nodeId === 'a')).toBe(false);
    // Without any output node nothing is left out: the live editor sees every problem as one.
    const noOutput = graphJson([{ id: 'loose', type: 'Add' }], []);
    expect(only(validateGraph(noOutput, catalog, { requireOutput: false }).issues, 'missing_input').nodeId).toBe('loose');
  });

  it('says "an" before a type that starts with a vowel', () => {
    const g = graphJson([{ id: 'save', type: 'SaveImage' }], []);
    expect(only(validateGraph(g, catalog).issues, 'missing_input').message).toBe('Save Image → image is not connected; it needs an Image input.');
  });

  it('bypassed and muted nodes: their inputs and parameters are not checked; a bypass needs an input of its output type', () => {
    // Muted b: neither its missing input nor its bad parameter is a problem, and "out" (which needs b) is not either.
    const muted = numberChain();
    muted.edges = muted.edges.filter((e) => e.to.node !== 'b');
    muted.nodes.find((n) => n.id === 'b')!.params = { offset: 'lots' };
    muted.nodes.find((n) => n.id === 'b')!.mode = 'mute';
    const r = validateGraph(muted, catalog, { requireOutput: false });
    expect(r.issues).toEqual([]);
    expect(r.graph!.nodes.find((n) => n.id === 'b')!.mode).toBe('mute');
    // A job needs something to run: every output muted (or needing a muted node) is refused.
    expect(only(validateGraph(muted, catalog).issues, 'no_outputs').message).toMatch(/muted/);

    // Bypassed b passes a's Number through to out: valid.
    const bypassed = numberChain();
    bypassed.nodes.find((n) => n.id === 'b')!.mode = 'bypass';
    expect(validateGraph(bypassed, catalog).issues).toEqual([]);
    // A bypassed Invert (Latent, Model in; Inversion out) whose output nothing uses is fine.
    const unused = graphJson([{ id: 'inv', type: 'Invert' }], []);
    unused.nodes[0]!.mode = 'bypass';
    expect(validateGraph(unused, catalog, { requireOutput: false }).issues).toEqual([]);
    // A bypassed Constant (no input) cannot stand in for the number Add uses.
    const source = numberChain();
    source.nodes.find((n) => n.id === 'a')!.mode = 'bypass';
    expect(only(validateGraph(source, catalog).issues, 'bypass_unmatched')).toMatchObject({
      nodeId: 'a',
      field: 'value',
      message: 'Constant is bypassed, but no connected input of type Number can stand in for its output “value”; connect one, or mute the node instead.',
    });
  });

  it('socket type mismatch names both types and both ends', () => {
    const g = graphJson(
      [
        { id: 'img', type: 'LoadImage', params: { file: 'cat.png' } },
        { id: 'model', type: 'LoadModel' },
        { id: 'inv', type: 'Invert' },
        { id: 'save', type: 'SaveImage' },
      ],
      [
        ['img', 'image', 'inv', 'latent'],
        ['model', 'model', 'inv', 'model'],
        ['img', 'image', 'save', 'image'],
      ],
    );
    const r = validateGraph(g, catalog);
    const i = only(problems(r), 'type_mismatch');
    expect(i).toMatchObject({ nodeId: 'inv', field: 'latent' });
    expect(i.message).toBe('Invert → latent expects Latent, got Image from Load Image → image');
    expect(problems(r)).toHaveLength(1);
  });

  it('more than one edge into one input', () => {
    const g = numberChain();
    g.nodes.push({ id: 'c', type: 'Constant', params: {}, position: { x: 0, y: 0 } });
    g.edges.push({ from: { node: 'c', output: 'value' }, to: { node: 'b', input: 'a' } });
    const i = only(validateGraph(g, catalog).issues, 'multiple_edges');
    expect(i).toMatchObject({ nodeId: 'b', field: 'a' });
    expect(i.message).toBe('Add → a has 2 connections; an input takes exactly one.');
  });

  it('dangling edge to a node that does not exist', () => {
    const g = numberChain();
    g.edges.push({ from: { node: 'ghost', output: 'value' }, to: { node: 'b', input: 'b' } });
    const i = only(validateGraph(g, catalog).issues, 'dangling_edge');
    expect(i).toMatchObject({ nodeId: 'b', field: 'b' });
    expect(i.message).toBe('Add → b is connected to node "ghost", which does not exist.');
  });

  it('cycle, naming the nodes in it', () => {
    const g = graphJson(
      [
        { id: 'a', type: 'Constant' },
        { id: 'p', type: 'Add', title: 'First' },
        { id: 'q', type: 'Add', title: 'Second' },
        { id: 'out', type: 'Show' },
      ],
      [
        ['a', 'value', 'p', 'a'],
        ['q', 'sum', 'p', 'b'],
        ['p', 'sum', 'q', 'a'],
        ['q', 'sum', 'out', 'value'],
      ],
    );
    const i = only(validateGraph(g, catalog).issues, 'cycle');
    expect(['p', 'q']).toContain(i.nodeId);
    expect(i.message).toMatch(/^These nodes form a cycle: (First → Second → First|Second → First → Second)\./);
  });

  it('parameter out of range: "Mask → sharpness must be ≤ 200, got 500"', () => {
    const g = numberChain();
    g.nodes.push({ id: 'm', type: 'Mask', params: { sharpness: 500 }, position: { x: 0, y: 0 } });
    const i = only(problems(validateGraph(g, catalog)), 'param_out_of_range');
    expect(i).toMatchObject({ nodeId: 'm', field: 'sharpness' });
    expect(i.message).toBe('Mask → sharpness must be ≤ 200, got 500');
  });

  it('parameter of the wrong type', () => {
    const g = numberChain();
    g.nodes.push({ id: 'm', type: 'Mask', params: { sharpness: 'high' }, position: { x: 0, y: 0 } });
    const i = only(problems(validateGraph(g, catalog)), 'param_wrong_type');
    expect(i).toMatchObject({ nodeId: 'm', field: 'sharpness' });
    expect(i.message).toBe('Mask → sharpness must be a number, got string "high"');
  });

  it('invalid parameter values: enum options, whole numbers, multiples, required', () => {
    const g = numberChain();
    g.nodes.push(
      { id: 'm', type: 'Mask', params: { shape: 'square', seed: 1.5 }, position: { x: 0, y: 0 } },
      { id: 'img', type: 'LoadImage', params: { width: 500 }, position: { x: 0, y: 0 } },
    );
    const issues = problems(validateGraph(g, catalog));
    const byField = Object.fromEntries(issues.map((i) => [`${i.nodeId}.${i.field}`, i]));
    expect(byField['m.shape']).toMatchObject({ code: 'param_invalid', message: 'Mask → shape must be one of "linear", "logistic", got text "square"' });
    expect(byField['m.seed']).toMatchObject({ code: 'param_wrong_type', message: 'Mask → seed must be a whole number, got number 1.5' });
    expect(byField['img.width']).toMatchObject({ code: 'param_invalid', message: 'Load Image → width must be a multiple of 64, got 500' });
    expect(byField['img.file']).toMatchObject({ code: 'param_invalid', message: 'Load Image → file is required' });
  });

  it("the node's own check() results", () => {
    const g = graphJson(
      [
        { id: 'img', type: 'LoadImage', params: { file: 'a.png' } },
        { id: 'model', type: 'LoadModel' },
        { id: 'inv', type: 'Invert', params: { steps: 10, skip: 30 } },
        { id: 'save', type: 'SaveImage' },
      ],
      [
        ['model', 'model', 'inv', 'model'],
        ['img', 'image', 'save', 'image'],
      ],
    );
    const issues = problems(validateGraph(g, catalog));
    const i = only(issues, 'custom');
    expect(i).toMatchObject({ nodeId: 'inv', field: 'skip' });
    expect(i.message).toBe('Invert → skip must be less than steps (10), got 30');
  });

  it('unknown parameter names are dropped, or reported with strictParams', () => {
    const g = numberChain();
    g.nodes[1].params = { offset: 1, offest: 2 };
    const lenient = validateGraph(g, catalog);
    expect(lenient.ok).toBe(true);
    expect(lenient.graph!.nodes[1].params).toEqual({ offset: 1 });
    const strict = validateGraph(g, catalog, { strictParams: true });
    const i = only(strict.issues, 'param_invalid');
    expect(i).toMatchObject({ nodeId: 'b', field: 'offest' });
    expect(i.message).toBe('Add has no parameter "offest" (it has "offset").');
    g.nodes[1].params = { offset: 1, constructor: 2 };
    expect(only(validateGraph(g, catalog, { strictParams: true }).issues, 'param_invalid')).toMatchObject({ nodeId: 'b', field: 'constructor' });
  });

  it('no output node, unless the caller says outputs are not required', () => {
    const g = numberChain();
    g.nodes = g.nodes.filter((n) => n.id !== 'out');
    g.edges = g.edges.filter((e) => e.to.node !== 'out');
    const i = only(validateGraph(g, catalog).issues, 'no_outputs');
    expect(i.message).toBe('The graph has no output node; add one such as Show, Save or Save Image so the job produces a result.');
    expect(validateGraph(g, catalog, { requireOutput: false }).ok).toBe(true);
    const empty = validateGraph(graphJson([]), catalog);
    expect(empty.issues.map((x) => x.message)).toEqual(['The graph is empty; add nodes and an output node such as Show, Save or Save Image.']);
  });

  it('file structure errors carry a path and, inside a node, its id', () => {
    const g = numberChain() as unknown as { nodes: Record<string, unknown>[] };
    g.nodes[1].position = { x: 'left', y: 0 };
    g.nodes.push({ id: 'bad id!', type: 'Constant' });
    const r = validateGraph(g, catalog);
    expect(r.ok).toBe(false);
    expect(r.graph).toBeUndefined();
    const pos = r.issues.find((i) => i.field === 'nodes[1].position.x')!;
    expect(pos).toMatchObject({ code: 'schema', nodeId: 'b' });
    expect(pos.message).toBe('Node "b" → position.x must be a number, got string "left"');
    const id = r.issues.find((i) => i.field === 'nodes[3].id')!;
    expect(id.code).toBe('schema');
    expect(id.message).toMatch(/node id may use letters, digits/);
    // The malformed node "b" is not checkable, but its edges are not reported as dangling either.
    expect(r.issues.filter((i) => i.code === 'dangling_edge')).toEqual([]);
  });

  it('reports several problems of different kinds in one call', () => {
    const g = graphJson(
      [
        { id: 'img', type: 'LoadImage', params: { file: 'a.png' } },
        { id: 'inv', type: 'Invert', params: { eta: 3 } },
        { id: 'm', type: 'Mask', params: { sharpness: 500 } },
        { id: 'x', type: 'Nope' },
      ],
      [
        ['img', 'image', 'inv', 'latent'],
        ['ghost', 'model', 'inv', 'model'],
      ],
    );
    const r = validateGraph(g, catalog);
    expect(r.ok).toBe(false);
    expect(r.graph).toBeDefined();
    const codes = r.issues.map((i) => i.code).sort();
    expect(codes).toEqual(['dangling_edge', 'no_outputs', 'param_out_of_range', 'param_out_of_range', 'type_mismatch', 'unknown_node_type']);
    for (const i of r.issues) if (i.code !== 'no_outputs') expect(i.nodeId).toBeTruthy();
    expect(r.issues.find((i) => i.nodeId === 'inv' && i.field === 'eta')!.message).toBe('Invert → eta must be ≤ 1, got 3');
  });

  it('names nodes by their user title, adding the id when two read the same', () => {
    const g = numberChain();
    g.nodes.push(
      { id: 'm1', type: 'Mask', params: { sharpness: -1 }, position: { x: 0, y: 0 } },
      { id: 'm2', type: 'Mask', params: {}, position: { x: 0, y: 0 } },
      { id: 'm3', type: 'Mask', title: 'Seam', params: { sharpness: 201 }, position: { x: 0, y: 0 } },
    );
    const msgs = problems(validateGraph(g, catalog)).map((i) => i.message);
    expect(msgs).toContain('Mask (m1) → sharpness must be ≥ 0, got -1');
    expect(msgs).toContain('Seam → sharpness must be ≤ 200, got 201');
  });

  it('formatIssue gives one readable line', () => {
    expect(formatIssue({ code: 'param_out_of_range', nodeId: 'm', field: 'sharpness', message: 'Mask → sharpness must be ≤ 200, got 500' })).toBe(
      '[param_out_of_range] Mask → sharpness must be ≤ 200, got 500 (node m, field sharpness)',
    );
    expect(formatIssue({ code: 'no_outputs', message: 'No output.' })).toBe('[no_outputs] No output.');
  });

  it('summarizeIssues names the first issue and counts the others, in the singular for one', () => {
    const issue = (n: number): ValidationIssue => ({ code: 'unknown_node_type', nodeId: `x${n}`, message: `Unknown node type "T${n}".` });
    expect(summarizeIssues([issue(1)])).toBe('[unknown_node_type] Unknown node type "T1". (node x1)');
    expect(summarizeIssues([issue(1), issue(2)])).toBe('[unknown_node_type] Unknown node type "T1". (node x1) (and 1 more problem)');
    expect(summarizeIssues([issue(1), issue(2), issue(3)])).toBe('[unknown_node_type] Unknown node type "T1". (node x1) (and 2 more problems)');
    expect(summarizeIssues([])).toBe('the graph is invalid');
  });
});

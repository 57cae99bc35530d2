/**
 * Functions stay short enough to read in one sitting. A function of the server, the node catalog or the
 * client (a React component is one too) longer than LIMIT lines is split into named phases (see `checkGraph` in server/graph/validate.ts or
 * `rewriteForAttentionMerge` in server/engine/attention/rewrite.ts): each phase a function whose name says
 * what that step of the domain does. Functions are found with the TypeScript compiler's own parser, so
 * arrow functions, methods and nested functions count the same as declarations; a function's length is
 * its own lines, from its first to its last, nested functions included.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');
/** Lines a function may span. */
const LIMIT = 100;
/** Folders checked: the server, the node catalog and the client (a React component is a function too). */
const FOLDERS = ['server', 'nodes', 'client/src'];

function sourceFiles(dir: string): string[] {
  return readdirSync(path.join(root, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.tsx?$/.test(e.name) && !e.name.endsWith('.d.ts'))
    .map((e) => path.relative(root, path.join(e.parentPath, e.name)));
}

/** Every function-like node of a file with its name (or where it is) and its line count. */
function functionLengths(file: string, text: string): { name: string; lines: number }[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: { name: string; lines: number }[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const first = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
      const last = source.getLineAndCharacterOfPosition(node.getEnd()).line;
      found.push({ name: `${file}:${first + 1} ${nameOf(node)}`, lines: last - first + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

function nameOf(node: ts.Node): string {
  const own = (node as { name?: ts.Node }).name;
  if (own && (ts.isIdentifier(own) || ts.isStringLiteral(own))) return own.text;
  const parent = node.parent;
  if (parent && (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent)) && ts.isIdentifier(parent.name)) return parent.name.text;
  return '(anonymous)';
}

describe('function length', () => {
  it(`no function in ${FOLDERS.join('/ or ')}/ spans more than ${LIMIT} lines`, () => {
    const long = FOLDERS.flatMap(sourceFiles)
      .flatMap((file) => functionLengths(file, readFileSync(path.join(root, file), 'utf8')))
      .filter((f) => f.lines > LIMIT)
      .map((f) => `${f.name} (${f.lines} lines)`);
    expect(long, `split these into named phases of under ${LIMIT} lines each`).toEqual([]);
  });

  it('measures a function from its first line to its last, nested ones included', () => {
    const text = ['function outer() {', '  const inner = () => {', '    return 1;', '  };', '  return inner();', '}', ''].join('\n');
    expect(functionLengths('x.ts', text)).toEqual([
      { name: 'x.ts:1 outer', lines: 6 },
      { name: 'x.ts:2 inner', lines: 3 },
    ]);
  });
});

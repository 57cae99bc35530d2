/**
 * The client keeps its state in objects made by the app and handed down (the StudioStore of
 * client/src/app/studio-store.ts, one run-state store per graph tab, the node environment of each
 * editor), never in module-level stores: a module-level store is shared by every graph tab and every
 * studio on the page, which is how one tab's run painted another tab's nodes. Found with the
 * TypeScript parser: no top-level `new` of a store class, and no top-level `let` (mutable module
 * state) beyond the few listed here with their reason.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');
/** Classes whose instances hold state that belongs to a studio or to one graph. */
const STORES = new Set(['Observable', 'NodeRuntimeStore', 'JobTracker', 'JobsState', 'Gallery', 'StudioStore']);
/** Module-level variables that are the page's own, not a studio's or a graph's. */
const ALLOWED_LETS = new Set([
  // The browser tab's identity (kept by sessionStorage): one per page by nature.
  'client/src/app/autosave.ts reloaded',
  'client/src/app/autosave.ts tabId',
  // A lookup table computed once (the PNG chunk checksum).
  'client/src/png-graph.ts crcTable',
]);

function clientFiles(): string[] {
  return readdirSync(path.join(root, 'client/src'), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.tsx?$/.test(e.name))
    .map((e) => path.relative(root, path.join(e.parentPath, e.name)));
}

/** Top-level stores and mutable variables of a file's text: "file name (what)". */
export function moduleState(file: string, text: string): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  for (const statement of source.statements) {
    if (!ts.isVariableStatement(statement)) continue;
    const mutable = (statement.declarationList.flags & ts.NodeFlags.Let) !== 0;
    for (const d of statement.declarationList.declarations) {
      const name = d.name.getText(source);
      const init = d.initializer;
      if (init && ts.isNewExpression(init) && STORES.has(init.expression.getText(source)))
        found.push(`${file} ${name} (a module-level ${init.expression.getText(source)})`);
      else if (mutable && !ALLOWED_LETS.has(`${file} ${name}`)) found.push(`${file} ${name} (module-level mutable state)`);
    }
  }
  return found;
}

describe('client state', () => {
  it('lives in objects the app makes and hands down, not in module-level stores', () => {
    const found = clientFiles().flatMap((f) => moduleState(f, readFileSync(path.join(root, f), 'utf8')));
    expect(found, 'make it part of StudioStore (studio-wide) or of a graph tab, and pass it down').toEqual([]);
  });

  it('catches a module-level store and a module-level "current" variable', () => {
    const text = 'export const jobView = new Observable(null);\nlet current: EditorBridge | null = null;\nconst LIMIT = 3;\n';
    expect(moduleState('client/src/x.ts', text)).toEqual([
      'client/src/x.ts jobView (a module-level Observable)',
      'client/src/x.ts current (module-level mutable state)',
    ]);
  });
});

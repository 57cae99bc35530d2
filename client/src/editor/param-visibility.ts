/**
 * Parameters that apply only with certain values of others (`ui.when` in the catalog: a mask's angle
 * with direction "angle", its brush settings with shape "painted"): shown only then; and parameters
 * that do not apply with certain values (`ui.unless`: Load Model's conversion settings with the demo
 * model): hidden then.
 */
import type { CatalogParam } from '../../../server/protocol/catalog.ts';

export function paramVisible(param: CatalogParam, values: Record<string, unknown>, all: CatalogParam[]): boolean {
  const matches = (rule: unknown) =>
    Object.entries(rule as Record<string, unknown>).every(([name, allowed]) => {
      const value = values[name] ?? all.find((p) => p.name === name)?.default;
      return !Array.isArray(allowed) || allowed.includes(value);
    });
  const { when, unless } = (param.ui ?? {}) as { when?: unknown; unless?: unknown };
  if (isRule(unless) && matches(unless)) return false;
  return !isRule(when) || matches(when);
}

function isRule(rule: unknown): boolean {
  return Boolean(rule) && typeof rule === 'object' && !Array.isArray(rule);
}

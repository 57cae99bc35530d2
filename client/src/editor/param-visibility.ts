/**
 * Parameters that apply only with certain values of others (`ui.when` in the catalog: a mask's angle
 * with direction "angle", its brush settings with shape "painted"): shown only then.
 */
import type { CatalogParam } from '../../../server/protocol/catalog.ts';

export function paramVisible(param: CatalogParam, values: Record<string, unknown>, all: CatalogParam[]): boolean {
  const when = param.ui?.when;
  if (!when || typeof when !== 'object' || Array.isArray(when)) return true;
  return Object.entries(when as Record<string, unknown>).every(([name, allowed]) => {
    const value = values[name] ?? all.find((p) => p.name === name)?.default;
    return !Array.isArray(allowed) || allowed.includes(value);
  });
}

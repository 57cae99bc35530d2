/**
 * Mask presets over HTTP: list, read, save, delete. A preset's settings are checked against the
 * Mask node's own parameters (the catalog's schema), so what is saved is what a Mask node accepts,
 * whatever graph it is applied to.
 */
import { Router, type Request } from 'express';
import type { z } from 'zod';
import type { NodeCatalog } from '../catalog.ts';
import type { MaskPresetStore } from '../store/mask-presets.ts';
import { isSafeName } from '../store/paths.ts';
import { jsonObject, param } from './body.ts';
import { ApiError } from './errors.ts';

/** The node type whose settings presets hold. */
export const MASK_NODE_TYPE = 'Mask';

function presetName(req: Request): string {
  const name = param(req, 'name');
  if (!isSafeName(name)) {
    throw new ApiError(400, 'invalid_name', 'invalid preset name: use 1–64 letters, digits, spaces, "_", "-" or "." (no leading dot, no "..", no slashes)');
  }
  return name;
}

export function maskPresetRoutes(store: MaskPresetStore, catalog: NodeCatalog): Router {
  const router = Router();

  router.get('/mask-presets', async (_req, res) => {
    res.json(await store.list());
  });

  router.get('/mask-presets/:name', async (req, res) => {
    res.json(await store.read(presetName(req)));
  });

  /** Body { params }: a Mask node's parameters (missing ones take their defaults). */
  router.put('/mask-presets/:name', async (req, res) => {
    const name = presetName(req);
    const body = jsonObject(req, '{ params }');
    const mask = catalog.get(MASK_NODE_TYPE);
    if (!mask) throw new ApiError(400, 'bad_request', `this studio has no ${MASK_NODE_TYPE} node, so it keeps no mask presets`);
    const parsed = (mask.params as z.ZodType).safeParse(body.params ?? {});
    // The node's own checks too (a stroke of a style beyond the count, words that make no groups).
    const problems: { field: string; message: string }[] = parsed.success
      ? (mask.check?.(parsed.data) ?? [])
      : parsed.error.issues.map((i) => ({ field: i.path.join('.') || 'params', message: i.message }));
    if (!parsed.success || problems.length > 0) {
      const issues = problems.map((p) => ({ code: 'schema' as const, field: p.field, message: `${p.field}: ${p.message}` }));
      throw new ApiError(400, 'invalid_preset', `not the settings of a Mask node: ${issues.map((i) => i.message).join('; ')}`, issues);
    }
    res.json(await store.save(name, parsed.data as Record<string, unknown>));
  });

  router.delete('/mask-presets/:name', async (req, res) => {
    const name = presetName(req);
    await store.delete(name);
    res.json({ deleted: name });
  });

  return router;
}

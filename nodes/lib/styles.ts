/** What every node that handles N styles shares: the `styles` parameter, and the check that a mask has that many. */
import { z } from 'zod';
import { MAX_STYLES } from '../../server/protocol/painting.ts';
import type { VariadicSockets } from '../../server/protocol/catalog.ts';
import { UserError } from '../types.ts';
import type { MaskValue } from '../values.ts';

/** The whole-number parameter N (2..MAX_STYLES, default 2: the paper's two styles). */
export function stylesParam(description: string) {
  return z.number().int().min(2).max(MAX_STYLES).default(2).describe(description);
}

/** A family of sockets, one per style, counted by the `styles` parameter. */
export const PER_STYLE: VariadicSockets = { param: 'styles', min: 2, max: MAX_STYLES };

/** The mask must have one region per style (validation says so first when it comes straight from a Mask node). */
export function requireStyles(mask: MaskValue, styles: number, field = 'mask'): void {
  if (mask.styles !== styles) {
    throw new UserError(`the mask (${mask.description}) has ${mask.styles} styles, but ${styles} are merged here; give the Mask node ${styles} styles`, field);
  }
}

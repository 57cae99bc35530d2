/**
 * A painted mask as a Mask node keeps it in its parameters: strokes of a round brush, each painting one
 * style or erasing back to the fill style, with points relative to the picture (x along the width, y
 * down the height, both 0..1). Shared by the editor, which records strokes, and the engine, which
 * rasterises them at any size (engine/diffusion/paint.ts). Bounded so a node's parameters stay small:
 * at most MAX_STROKES strokes and MAX_POINTS points in all, each point 4 characters (two 12-bit
 * coordinates in base64url), so a full painting is about 33 kB of JSON.
 */
import { z } from 'zod';

/** Styles a mask (and a sampler) may have. */
export const MAX_STYLES = 8;
export const MAX_STROKES = 200;
export const MAX_POINTS = 8000;
/** Coordinates are quantised to 0..POINT_SCALE (12 bits, two base64url characters). */
export const POINT_SCALE = 4095;
/** Style number of an eraser stroke: it paints the fill style back. */
export const ERASER = 0;

/**
 * The colour of each style, everywhere a style is drawn: the mask preview, the painter's brushes, the
 * style sockets. Distinct in hue and readable on the editor's dark background.
 */
export const STYLE_COLORS = ['#e53935', '#1e88e5', '#43a047', '#fdd835', '#8e24aa', '#fb8c00', '#00acc1', '#ec407a'] as const;
/** What a style that does not exist (beyond the node's count) is drawn in. */
export const NO_STYLE_COLOR = '#6b7280';

/** The colour of style k (1..styles); grey for a style number the node does not have. */
export function styleColor(k: number, styles: number = MAX_STYLES): string {
  return Number.isInteger(k) && k >= 1 && k <= Math.min(styles, STYLE_COLORS.length) ? STYLE_COLORS[k - 1]! : NO_STYLE_COLOR;
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const DIGIT = new Map([...ALPHABET].map((c, i) => [c, i]));

/** Points [x0, y0, x1, y1, ...] in 0..1 → their compact text (clamped, rounded to 1/POINT_SCALE). */
export function encodePoints(xy: ArrayLike<number>): string {
  let s = '';
  for (let i = 0; i < xy.length; i++) {
    const v = xy[i]!;
    const q = Math.round(Math.min(1, Math.max(0, Number.isFinite(v) ? v : 0)) * POINT_SCALE);
    s += ALPHABET[q >> 6]! + ALPHABET[q & 63]!;
  }
  return s;
}

/** The compact text of a stroke's points → [x0, y0, x1, y1, ...] in 0..1. Throws on text that is not points. */
export function decodePoints(text: string): Float64Array {
  if (text.length % 4 !== 0) throw new Error(`stroke points must come in groups of 4 characters, got ${text.length}`);
  const out = new Float64Array(text.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = DIGIT.get(text[2 * i]!);
    const lo = DIGIT.get(text[2 * i + 1]!);
    if (hi === undefined || lo === undefined) throw new Error(`stroke points hold a character that is not base64url at ${2 * i}`);
    out[i] = ((hi << 6) | lo) / POINT_SCALE;
  }
  return out;
}

export const StrokeSchema = z.object({
  style: z.number().int().min(ERASER).max(MAX_STYLES).describe('The style the stroke paints (1..N); 0 erases back to the fill style.'),
  radius: z.number().min(0.002).max(0.5).describe("Brush radius, as a fraction of the picture's shorter side."),
  points: z
    .string()
    .min(4, 'a stroke needs at least one point')
    .max(4 * MAX_POINTS)
    .regex(/^(?:[A-Za-z0-9_-]{4})+$/, 'points are 4 base64url characters each (x, y)')
    .describe("The stroke's points, x and y in 0..4095 across the picture, two base64url characters each."),
});
export type Stroke = z.infer<typeof StrokeSchema>;

export const StrokesSchema = z
  .array(StrokeSchema)
  .max(MAX_STROKES)
  .superRefine((strokes, ctx) => {
    const points = strokes.reduce((n, s) => n + s.points.length / 4, 0);
    if (points > MAX_POINTS) ctx.addIssue({ code: 'custom', message: `a painting may have at most ${MAX_POINTS} points in all, got ${points}` });
  });

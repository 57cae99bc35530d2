/**
 * Masks from the picture's own words: "cat" → style 1, the rest → style 2, placed where the UNet
 * attended to "cat" while inverting the picture (the cross-attention maps of AttentionMapsValue).
 *
 * Each style k names some of the source prompt's words (or none: the rest). At every latent cell:
 *   a_k = the mean map of the tokens of style k's words (a multi-token word counts each token)
 *   s_k = (a_k − min a_k)/(max a_k − min a_k)  over the picture: 1 where the words are attended most
 *   s_rest = 1 − max_k s_k                      for the one style without words, if there is one
 *   w_k = exp(κ·s_k) / Σ_j exp(κ·s_j)           κ = sharpness: a soft argmax, borders where the scores cross
 * so the N planes are ≥ 0 and sum to 1; with "cat" and the rest, w_cat = σ(κ·(2·s_cat − 1)), its border
 * where the normalised attention to "cat" is ½. The planes are made at the latent grid, resized
 * bilinearly and then painted over and feathered like a painted mask (paint.ts).
 */
import { UserError } from '../errors.ts';
import type { AttentionMapsValue } from '../values.ts';

/**
 * The words of each style from the Mask node's text: groups separated by "|", words within a group by
 * commas or spaces ("cat, kitten | sofa"). N − 1 groups leave the last style the rest of the picture; N
 * groups give every style its words. Words are compared lower-cased, as the tokenizer sees them.
 */
export function parseWordGroups(text: string, styles: number): string[][] {
  const groups = text.split('|').map((g) =>
    g
      .toLowerCase()
      .split(/[\s,]+/)
      .filter((w) => w !== ''),
  );
  if (groups.length === 1 && groups[0]!.length === 0) {
    throw new UserError('a words mask needs words of the source prompt for style 1, e.g. "cat" (the rest of the picture is the last style)', 'words');
  }
  const empty = groups.findIndex((g) => g.length === 0);
  if (empty >= 0) throw new UserError(`style ${empty + 1} has no words between its "|" separators`, 'words');
  if (groups.length !== styles - 1 && groups.length !== styles) {
    throw new UserError(
      `${groups.length} word group${groups.length === 1 ? '' : 's'} for a mask of ${styles} styles: give ${styles - 1} (the last style takes the rest) or ${styles}, separated by "|"`,
      'words',
    );
  }
  return groups;
}

/** The token positions of each group's words in the source prompt; a word the prompt lacks is an error naming the prompt's words. */
export function wordPositions(attention: AttentionMapsValue, groups: readonly string[][]): number[][] {
  return groups.map((group, k) =>
    group.flatMap((word) => {
      const found = attention.words.filter((w) => w.word === word).flatMap((w) => w.positions);
      if (found.length === 0) {
        const known = [...new Set(attention.words.map((w) => w.word))].join(', ');
        throw new UserError(`style ${k + 1}: "${word}" is not a word of the source prompt (its words: ${known || 'none'})`, 'words');
      }
      return found;
    }),
  );
}

/** The N planes of the words mask at the maps' own (latent) grid; see the header for the formula. */
export function wordWeights(attention: AttentionMapsValue, positions: readonly number[][], styles: number, sharpness: number): Float32Array[] {
  const { width, height, tokens, maps } = attention;
  const n = width * height;
  if (maps.length !== tokens * n) throw new Error(`attention maps hold ${maps.length} values, ${tokens} maps of ${width}×${height} need ${tokens * n}`);
  if (positions.length !== styles && positions.length !== styles - 1) throw new Error(`${positions.length} word groups for ${styles} styles`);
  if (!Number.isFinite(sharpness) || sharpness <= 0) throw new Error(`words mask sharpness must be a positive number, got ${sharpness}`);
  const scores = positions.map((group) => {
    const a = new Float32Array(n);
    for (const t of group) {
      if (!Number.isInteger(t) || t < 0 || t >= tokens) throw new Error(`token position ${t} is outside the ${tokens} text tokens`);
      const map = maps.subarray(t * n, (t + 1) * n);
      for (let p = 0; p < n; p++) a[p]! += map[p]! / group.length;
    }
    let [lo, hi] = [Infinity, -Infinity];
    for (const v of a) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
    for (let p = 0; p < n; p++) a[p] = hi > lo ? (a[p]! - lo) / (hi - lo) : 0;
    return a;
  });
  if (positions.length === styles - 1) {
    const rest = new Float32Array(n);
    for (let p = 0; p < n; p++) rest[p] = 1 - Math.max(...scores.map((s) => s[p]!));
    scores.push(rest);
  }
  const planes = scores.map(() => new Float32Array(n));
  for (let p = 0; p < n; p++) {
    let top = -Infinity;
    for (const s of scores) top = Math.max(top, s[p]!);
    let sum = 0;
    for (let k = 0; k < styles; k++) sum += planes[k]![p] = Math.exp(sharpness * (scores[k]![p]! - top));
    for (let k = 0; k < styles; k++) planes[k]![p]! /= sum;
  }
  return planes;
}

/**
 * Which latent sizes a UNet takes, read from its graph, never from the model family.
 *
 * Along the UNet the latent's height and width go through stride-2 convolutions (each maps a side x to
 * ⌈x/2⌉ with SD's 3×3, padding 1) and back up through Resize nodes, and tensors of two paths meet where a
 * skip joins the up path (Concat) or a residual is added. Those meetings need equal sides. The Resize is
 * what decides: an export traced at 64×64 resizes by a constant ×2 (2·⌈x/2⌉ = x only for even x, so
 * sides must survive every halving: multiples of 8 in SD 1.x); one traced at a size that does not divide
 * evenly takes the output size from the skip tensor's Shape and meets it whatever x is.
 *
 * So each spatial tensor gets a size expression in the input side and every join is a constraint
 * (graph-sizes.ts); a side is taken when every constraint evaluates equal. Height and width go through
 * their own kernel, stride and pad, so each axis is searched on its own. Where the graph shows no strided
 * structure, `unet/config.json`'s levels stand in (constant ×2 assumed); where it shows nothing at all,
 * onnxruntime's own refusal is translated.
 */
import { UserError } from '../errors.ts';
import { readGraphOutline, type GraphOutline } from '../runtime/graph-outline.ts';
import { analyseGraphSizes, evenHalvings, sideOf, type Axis, type GraphSizes, type Upsampling } from './graph-sizes.ts';
import type { TensorInfo } from '../runtime/runtime.ts';

export type { Upsampling } from './graph-sizes.ts';

/** Where a latent-size rule comes from. */
export type RuleSource = 'graph' | 'config' | 'none';

/**
 * The latent sides a UNet takes, per axis, with the user-facing message for a size it does not take.
 * `fixed` are sides declared fixed in the graph's input (static exports).
 */
export class LatentSizeRule {
  private readonly memo = [new Map<number, boolean>(), new Map<number, boolean>()];

  constructor(
    readonly source: RuleSource,
    private readonly graph: GraphSizes,
    readonly fixed: [height: number | null, width: number | null] = [null, null],
  ) {}

  /**
   * From the graph's structure; `configLevels` (unet/config.json's block_out_channels) where the graph
   * shows none, or where what it shows cannot be right (it would refuse even sides that survive every
   * halving: an op this analysis does not model changes sizes).
   */
  static of(graph: GraphSizes | null, fixed: [number | null, number | null], configLevels: number | null): LatentSizeRule {
    if (graph && graph.deepestFactor > 1) {
      const rule = new LatentSizeRule('graph', graph, [null, null]);
      const m = graph.deepestFactor;
      if ([1, 2, 3, 5, 8].every((k) => rule.takesSide(0, k * m) && rule.takesSide(1, k * m))) return new LatentSizeRule('graph', graph, fixed);
    }
    // Only the number of halvings is known: assume the stricter, constant ×2 up path.
    if (configLevels && configLevels > 1) return new LatentSizeRule('config', evenHalvings(configLevels), fixed);
    return new LatentSizeRule('none', { constraints: [], deepestFactor: 1, upsampling: 'none' }, fixed);
  }

  get upsampling(): Upsampling {
    return this.graph.upsampling;
  }

  /** Sides that are multiples of this always fit: they survive every halving. */
  get safeMultiple(): number {
    return this.graph.deepestFactor;
  }

  takesSide(axis: Axis, s: number): boolean {
    if (!Number.isInteger(s) || s < 1) return false;
    const fixed = this.fixed[axis];
    if (fixed !== null) return s === fixed;
    let hit = this.memo[axis]!.get(s);
    if (hit === undefined) {
      hit = this.graph.constraints.every(([a, b]) => {
        const x = sideOf(a, axis, s);
        return x >= 1 && x === sideOf(b, axis, s);
      });
      this.memo[axis]!.set(s, hit);
    }
    return hit;
  }

  takes(w: number, h: number): boolean {
    return this.takesSide(1, w) && this.takesSide(0, h);
  }

  /** The sides nearest `s` that the axis takes: `s` itself, or the next below and above (either may be missing). */
  nearestSides(axis: Axis, s: number, limit = Math.max(64, 4 * s)): number[] {
    if (this.takesSide(axis, s)) return [s];
    const out: number[] = [];
    for (let x = Math.min(s - 1, limit); x >= 1; x--) {
      if (this.takesSide(axis, x)) {
        out.push(x);
        break;
      }
    }
    for (let x = Math.max(1, s + 1); x <= limit; x++) {
      if (this.takesSide(axis, x)) {
        out.push(x);
        break;
      }
    }
    return out;
  }

  /** The largest side at most `max` the axis takes (the smallest it takes when none is that small). */
  fitSide(axis: Axis, max: number): number | null {
    for (let x = Math.floor(max); x >= 1; x--) if (this.takesSide(axis, x)) return x;
    return this.nearestSides(axis, Math.max(1, Math.floor(max)))[0] ?? null;
  }

  /** "any size", "multiples of 8", or examples, for latent sides (times `scale` for image sides). */
  describe(scale = 1): string {
    const [fh, fw] = this.fixed;
    if (fh !== null || fw !== null) return `only ${fw === null ? 'any' : fw * scale}×${fh === null ? 'any' : fh * scale}`;
    const probe = Array.from({ length: 4 * Math.max(16, this.safeMultiple) }, (_, i) => i + 1);
    const taken = probe.filter((s) => this.takesSide(0, s) && this.takesSide(1, s));
    if (taken.length === probe.length) return 'any size';
    const m = taken[0];
    if (m !== undefined && probe.every((s) => (s % m === 0) === taken.includes(s))) return `sides that are multiples of ${m * scale}`;
    return `sides such as ${taken
      .slice(0, 6)
      .map((s) => s * scale)
      .join(', ')}`;
  }

  /** Why the model cannot take a w×h latent (image factor `f`), naming the nearest sizes it takes; null if it can. */
  problem(w: number, h: number, f: number): string | null {
    if (this.takes(w, h)) return null;
    const size = (x: number | null, y: number | null) => `${x ?? 'any'}×${y ?? 'any'}`;
    const [fh, fw] = this.fixed;
    if ((fh !== null && fh !== h) || (fw !== null && fw !== w)) {
      return (
        `unet/model.onnx only takes ${size(fw, fh)} latents (images of ${size(fw && fw * f, fh && fh * f)}), got ${w}×${h} ` +
        `(a ${w * f}×${h * f} image): use an image of that size, or export the UNet with dynamic height and width`
      );
    }
    let why = `it takes image ${this.describe(f)} (latent ${this.describe()})`;
    if (this.upsampling === 'constant-scale' || this.upsampling === 'mixed') {
      const halvings = Math.round(Math.log2(this.safeMultiple));
      why +=
        `: it halves the latent ${halvings} times and its up path doubles it back by a fixed ×2, ` +
        (this.source === 'config' ? `as unet/config.json's ${halvings + 1} levels imply` : 'as exports traced at a size that divides evenly do');
    }
    return `this UNet does not take a ${w * f}×${h * f} image (a ${w}×${h} latent): ${why}. Nearest sizes it takes: ${this.nearestImages(w, h, f)}`;
  }

  /** Up to four nearest w×h image sizes the model takes, nearest first. */
  nearestImages(w: number, h: number, f: number): string {
    const ws = this.nearestSides(1, w);
    const hs = this.nearestSides(0, h);
    const combos = ws
      .flatMap((x) => hs.map((y) => [x, y] as const))
      .sort((a, b) => Math.abs(a[0] - w) + Math.abs(a[1] - h) - (Math.abs(b[0] - w) + Math.abs(b[1] - h)));
    const names = combos.map(([x, y]) => `${x * f}×${y * f}`);
    if (names.length === 0) return 'none near it';
    return names.length === 1 ? names[0]! : `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}`;
  }

  /** Throws the user-facing error when the model cannot take a w×h latent. */
  check(w: number, h: number, f: number): void {
    const problem = this.problem(w, h, f);
    if (problem) throw new UserError(problem, 'image');
  }

  /**
   * onnxruntime refused a call on shapes (the graph holds something this rule did not model): the same
   * message, naming the sizes that survive every halving, which every UNet of this depth takes.
   * Null when the error is not about shapes, or the size is one of those.
   */
  translateRuntimeError(error: unknown, w: number, h: number, f: number): UserError | null {
    const msg = error instanceof Error ? error.message : String(error);
    if (!/dimension|shape|broadcast|concat|multiple of/i.test(msg)) return null;
    const m = this.safeMultiple;
    if (m > 1 && w % m === 0 && h % m === 0) return null;
    const first = msg
      .split('\n')[0]!
      .replace(/^.*Status Message: /, '')
      .trim();
    const head = `this UNet does not take a ${w * f}×${h * f} image (a ${w}×${h} latent): onnxruntime refused it (${first})`;
    if (m === 1)
      return new UserError(`${head}. Its graph does not show which sizes it takes; exports of SD 1.x take image sides that are multiples of ${8 * f}`, 'image');
    const safe = LatentSizeRule.of(null, this.fixed, Math.round(Math.log2(m)) + 1);
    return new UserError(
      `${head}. Image sides that are multiples of ${m * f} survive its ${Math.round(Math.log2(m))} halvings and always work; nearest: ${safe.nearestImages(w, h, f)}`,
      'image',
    );
  }
}

/**
 * The rule of a UNet graph whose latent input is `sample` (as the session declares it): from the graph,
 * else from `configLevels` (unet/config.json), else none. A graph that cannot be read or followed is not
 * an error here (onnxruntime opened it): the session's own errors are translated instead.
 */
export function latentSizeRule(outline: GraphOutline | null, sample: TensorInfo, configLevels: number | null): LatentSizeRule {
  const side = (d: number | string | undefined) => (typeof d === 'number' && d > 0 ? d : null);
  const fixed: [number | null, number | null] = [side(sample.shape[2]), side(sample.shape[3])];
  let graph: GraphSizes | null;
  try {
    graph = outline && analyseGraphSizes(outline, sample.name);
  } catch {
    graph = null;
  }
  return LatentSizeRule.of(graph, fixed, configLevels);
}

/** The outline of a UNet file, or null where it cannot be read (see latentSizeRule). */
export function readUnetOutline(modelPath: string): Promise<GraphOutline | null> {
  return readGraphOutline(modelPath).catch(() => null);
}

/** latentSizeRule of a UNet file. */
export async function readLatentSizeRule(modelPath: string, sample: TensorInfo, configLevels: number | null): Promise<LatentSizeRule> {
  return latentSizeRule(await readUnetOutline(modelPath), sample, configLevels);
}

/**
 * The one UNet session of a model, so its weights are held once (issue 23: the stock UNet and the
 * attention-merge UNet used to be two sessions, each with a copy: 1.88× the weights on the sd15 preset).
 *
 * The session is the stock graph until an attention merge asks for N conditionings; it is then replaced
 * (closed first, so two copies never coexist) by the rewrite for N (attention/rewrite.ts), and only grows
 * after that. The rewrite of N conditionings serves every call:
 *
 * - a stock call: mask channel 1 all ones, the other channels zero, and zero-weight "pad" conditionings
 *   in slots 2..N. The blend is 1·A_1 + 0·A_2 + … + (1 − 1 − 0 …)·A_N = A_1, exactly where the resized
 *   mask is exactly 1 (same or halved grids), to float rounding elsewhere;
 * - a merge of n < N styles: styles 1..n−1 in slots 1..n−1 with their weights, pads with weight 0 in
 *   slots n..N−1, style n in slot N (which takes what the others leave): the same sums, in the same
 *   order, as the rewrite of n (adding 0·A and subtracting 0 are exact).
 *
 * Pads carry one token when the conditioning's sequence axis is dynamic (their attention then costs next
 * to nothing), the model's full text length when it is fixed or a one-token call is refused.
 * Calls and the swap are serialised, so no call runs on a session being closed.
 */
import type { OrtTensor } from '../runtime/runtime.ts';
import { floatTensor, numericDim } from '../runtime/runtime.ts';
import { conditioningInput, MASK_INPUT } from '../attention/rewrite.ts';
import type { MergeRequest, UnetBinding } from './unet-binding.ts';
import type { UnetBuffers } from './unet-buffers.ts';

/** The session in the slot: its binding and the conditionings N it takes (1: the stock UNet). */
export interface SlotSession {
  binding: UnetBinding;
  styles: number;
  /** The graph's path relative to the model folder (for Load Model's session list). */
  rel: string;
}

export class UnetSlot {
  private current: SlotSession;
  private tail: Promise<unknown> = Promise.resolve();
  private growing = new Map<number, Promise<SlotSession>>();
  /** Bindings whose pads need the full text length (a one-token pad was refused). */
  private readonly fullPads = new WeakSet<UnetBinding>();
  private readonly pads = new Map<string, Float32Array>();
  private readonly masks = new WeakMap<object, Map<string, Float32Array>>();
  private readonly stockKey = {};
  /** Sessions opened in this slot over its life (the test of "one copy": at most one is open at a time). */
  opened = 1;

  constructor(
    stock: SlotSession,
    private readonly text: { readonly textLength: number; readonly textDim: number },
    private readonly buffers: UnetBuffers,
  ) {
    this.current = stock;
  }

  get session(): SlotSession {
    return this.current;
  }

  /** Runs `fn` after every call and swap queued before it. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn, fn);
    this.tail = result.catch(() => undefined);
    return result;
  }

  /**
   * Makes the slot take at least `styles` conditionings: `prepare` makes the rewritten graph (before
   * anything is closed, so a model that cannot be rewritten keeps its session), then the session is
   * closed and `open` opens the new one; if that fails, the previous graph is opened again.
   */
  grow(styles: number, prepare: () => Promise<unknown>, open: (styles: number) => Promise<SlotSession>): Promise<SlotSession> {
    if (this.current.styles >= styles) return Promise.resolve(this.current);
    let job = this.growing.get(styles);
    if (!job) {
      job = (async () => {
        await prepare();
        return this.exclusive(async () => {
          if (this.current.styles >= styles) return this.current;
          const previous = this.current;
          await previous.binding.session.release().catch(() => undefined);
          try {
            this.current = await open(styles);
          } catch (e) {
            this.current = await open(previous.styles);
            this.opened++;
            throw e;
          } finally {
            this.opened++;
          }
          return this.current;
        });
      })().finally(() => this.growing.delete(styles));
      this.growing.set(styles, job);
    }
    return job;
  }

  /**
   * The feeds beyond sample, timestep and encoder_hidden_states for a call of `rows` rows on session `s`:
   * the merge's (or, without one, the stock call's) conditionings, pads and mask.
   */
  extraFeeds(s: SlotSession, rows: number, h: number, w: number, merge?: MergeRequest): Record<string, OrtTensor> {
    if (s.styles === 1) {
      if (merge) throw new Error('the UNet session takes one conditioning, but an attention merge was asked of it');
      return {};
    }
    const n = merge ? merge.conditionings.length + 1 : 1;
    if (n > s.styles) throw new Error(`the UNet session takes ${s.styles} conditionings; this call has ${n}`);
    const feeds: Record<string, OrtTensor> = {};
    const info = (name: string) => {
      const found = s.binding.extra.find((i) => i.name === name);
      if (!found) throw new Error(`${s.rel} lacks the input ${name} of an attention-merge UNet of ${s.styles} styles`);
      return found;
    };
    const { textDim: D } = this.text;
    for (let slot = 2; slot <= s.styles; slot++) {
      const name = conditioningInput(slot);
      // Style k (2..n−1) in slot k; style n in the last slot; pads between.
      const style = slot === s.styles && n > 1 ? n : slot < n ? slot : 0;
      if (style > 0) {
        // k·L tokens per row when the style's prompt is read in chunks.
        const c = merge!.conditionings[style - 2]!;
        feeds[name] = this.buffers.feed(info(name), c, [rows, c.length / (rows * D), D], true);
      } else {
        const tokens = this.padTokens(s, info(name));
        feeds[name] = this.buffers.feed(info(name), this.pad(rows * tokens * D), [rows, tokens, D], true);
      }
    }
    feeds[MASK_INPUT] = floatTensor(info(MASK_INPUT).type, this.mask(s.styles, n, h, w, merge), [1, s.styles - 1, h, w]);
    return feeds;
  }

  /** Whether pads of `s` may be one token; after `refusePads` they are the full text length. */
  padTokens(s: SlotSession, info: { shape: (number | string)[] }): number {
    const declared = numericDim(info.shape[1]);
    return declared ?? (this.fullPads.has(s.binding) ? this.text.textLength : 1);
  }

  /** A call with one-token pads failed: retry with full ones. Returns whether anything changed. */
  refusePads(s: SlotSession): boolean {
    if (s.styles === 1 || this.fullPads.has(s.binding)) return false;
    this.fullPads.add(s.binding);
    return true;
  }

  private pad(size: number): Float32Array {
    const key = String(size);
    let zeros = this.pads.get(key);
    if (!zeros) this.pads.set(key, (zeros = new Float32Array(size)));
    return zeros;
  }

  /** The mask of N − 1 channels for a call of n styles (built once per request and session width). */
  private mask(styles: number, n: number, h: number, w: number, merge?: MergeRequest): Float32Array {
    const plane = h * w;
    const owner = merge ?? this.stockKey;
    let byShape = this.masks.get(owner);
    if (!byShape) this.masks.set(owner, (byShape = new Map<string, Float32Array>()));
    const key = `${styles}:${h}x${w}`;
    let mask = byShape.get(key);
    if (!mask) {
      mask = new Float32Array((styles - 1) * plane);
      if (merge) {
        if (merge.weights.length !== (n - 1) * plane || merge.w !== w || merge.h !== h) {
          throw new Error(`attention merge weights are ${merge.w}×${merge.h} (${merge.weights.length} values), the call is ${w}×${h} with ${n} styles`);
        }
        mask.set(merge.weights);
      } else {
        mask.fill(1, 0, plane);
      }
      byShape.set(key, mask);
    }
    return mask;
  }
}

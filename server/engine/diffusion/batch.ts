/**
 * Batches: B pictures in one UNet call per step. Each picture runs the ordinary sampler (cycle.ts) on its
 * own view of the model; a view's UNet call waits until every picture still running has made its call of
 * the step, then one call goes to the model with their rows stacked (rows × B: samples, text rows and an
 * attention merge's other conditionings, picture after picture; the merge mask is shared by every row), and
 * each picture reads its own rows of the output. The rules and samplers stay per picture, so picture k of a
 * batch is the picture a batch of one would give (within the rounding of a larger call).
 */
import type { CallExtras, Denoiser } from './denoiser.ts';
import { decode, invert, type CycleCode, type DecodeOptions, type InvertOptions } from './cycle.ts';
import type { EpsilonRule } from './rows.ts';
import type { NoiseSource } from './noise.ts';

/** The most pictures one batch takes (the Invert node's limit). */
export const MAX_BATCH = 8;

/** A model that can stack the extras of several pictures' calls into one call's (attention merge's conditionings). */
export interface BatchableDenoiser<X extends CallExtras = CallExtras> extends Denoiser<X> {
  /** The extras of one call carrying the pictures' rows in order; each part is one picture's extras. */
  joinExtras?(parts: readonly X[]): X;
}

interface Request {
  sample: Float32Array;
  batch: number;
  h: number;
  w: number;
  t: number;
  ehs: Float32Array;
  extras: CallExtras | undefined;
  resolve: (out: Float32Array) => void;
  reject: (e: unknown) => void;
}

/** Joined buffers, remembered by the identity of their parts (each picture's rows are constant across a run). */
class JoinCache<P extends object, J> {
  private entries: { parts: P[]; joined: J }[] = [];
  get(parts: P[], join: (parts: P[]) => J): J {
    const hit = this.entries.find((e) => e.parts.length === parts.length && e.parts.every((p, i) => p === parts[i]));
    if (hit) return hit.joined;
    const joined = join(parts);
    this.entries.push({ parts, joined });
    return joined;
  }
}

function concat(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** What the weight sets of one batch share: the pictures still running, and the first failure. */
interface BatchState {
  running: number;
  failure: { error: Error } | undefined;
}

/**
 * The calls of one weight set in a batch: picture k's view queues its call, and the round goes to the
 * model as one call once every running picture has queued its own.
 */
class Lockstep {
  private pending: (Request | undefined)[] = [];
  private readonly texts = new JoinCache<Float32Array, Float32Array>();
  private readonly extrasCache = new JoinCache<CallExtras, CallExtras>();
  private sample = new Float32Array(0);

  constructor(
    private readonly model: BatchableDenoiser,
    private readonly state: BatchState,
    private readonly companions: (other: Denoiser) => Lockstep,
  ) {}

  /** Picture k's view of this weight set. */
  view(k: number): Denoiser {
    const model = this.model;
    return {
      info: model.info,
      checkLatentSize: (w, h) => model.checkLatentSize(w, h),
      unconditional: () => model.unconditional(),
      attentionMergeExtras: (conditionings, rows, weights, w, h) => model.attentionMergeExtras(conditionings, rows, weights, w, h),
      companion: (other) => this.companions(other).view(k),
      unet: (s, batch, h, w, t, ehs, extras) => {
        if (this.state.failure) return Promise.reject(this.state.failure.error);
        return new Promise<Float32Array>((resolve, reject) => {
          this.pending[k] = { sample: s, batch, h, w, t, ehs, extras, resolve, reject };
          this.maybeFire();
        });
      },
    };
  }

  /** Sends the round once every running picture has made its call. */
  maybeFire(): void {
    const round = this.pending.filter((r): r is Request => r !== undefined);
    if (round.length === 0 || round.length < this.state.running) return;
    this.pending = [];
    this.fire(round).catch((e: unknown) => {
      for (const r of round) r.reject(e);
    });
  }

  /** Stops the calls still waiting, with the batch's failure. */
  fail(error: Error): void {
    for (const r of this.pending) r?.reject(error);
    this.pending = [];
  }

  private async fire(round: Request[]): Promise<void> {
    const model = this.model;
    const { h, w, t } = round[0]!;
    if (round.some((r) => r.h !== h || r.w !== w || r.t !== t)) throw new Error('the pictures of a batch must be at the same step and latent size');
    const rows = round.reduce((s, r) => s + r.batch, 0);
    const size = round.reduce((s, r) => s + r.sample.length, 0);
    if (this.sample.length !== size) this.sample = new Float32Array(size);
    let at = 0;
    for (const r of round) {
      this.sample.set(r.sample, at);
      at += r.sample.length;
    }
    const ehs = this.texts.get(
      round.map((r) => r.ehs),
      concat,
    );
    const parts = round.map((r) => r.extras);
    let extras: CallExtras | undefined;
    if (parts.some((x) => x !== undefined)) {
      if (!model.joinExtras) throw new Error('this model cannot batch calls with extra inputs (attention merge); use a batch of 1');
      extras = this.extrasCache.get(parts as CallExtras[], (p) => model.joinExtras!(p));
    }
    const out = await model.unet(this.sample, rows, h, w, t, ehs, extras);
    at = 0;
    for (const r of round) {
      r.resolve(out.subarray(at, at + r.sample.length));
      at += r.sample.length;
    }
  }
}

/**
 * Runs `count` pictures in lockstep on `model`: `run(view, k)` is picture k's sampler on its view; every
 * round of view calls becomes one model call, and so for every other weight set a rule reaches through
 * the view's `companion` (a region's own model): one call per weight set per round. Resolves with the
 * pictures' results in order; when one fails, the others are stopped with its error.
 */
export async function inLockstep<T>(model: BatchableDenoiser, count: number, run: (view: Denoiser, k: number) => Promise<T>): Promise<T[]> {
  if (!Number.isInteger(count) || count < 1 || count > MAX_BATCH) throw new Error(`a batch has 1 to ${MAX_BATCH} pictures, got ${count}`);
  if (count === 1) return [await run(model, 0)];
  const state: BatchState = { running: count, failure: undefined };
  const locksteps = new Map<Denoiser, Lockstep>();
  const lockstepOf = (m: Denoiser): Lockstep => {
    let hit = locksteps.get(m);
    if (!hit) locksteps.set(m, (hit = new Lockstep(m, state, lockstepOf)));
    return hit;
  };
  const main = lockstepOf(model);
  return Promise.all(
    Array.from({ length: count }, async (_, k) => {
      try {
        return await run(main.view(k), k);
      } catch (e) {
        state.failure ??= { error: e instanceof Error ? e : new Error(String(e)) };
        for (const l of locksteps.values()) l.fail(state.failure.error);
        throw e;
      } finally {
        state.running--;
        for (const l of locksteps.values()) l.maybeFire();
      }
    }),
  );
}

/** B inversions of one latent, picture k with `noises[k]` (seed + k), in one UNet call per step; only picture 1 reports steps. */
export function invertBatch(
  model: BatchableDenoiser,
  x0: Float32Array,
  latentW: number,
  latentH: number,
  opts: Omit<InvertOptions, 'noise'>,
  noises: readonly NoiseSource[],
): Promise<CycleCode[]> {
  return inLockstep(model, noises.length, (view, k) =>
    invert(view, x0, latentW, latentH, { ...opts, noise: noises[k]!, onStep: k === 0 ? opts.onStep : undefined }),
  );
}

/** Decodes B codes under one rule in one UNet call per step; returns the B final latents; only picture 1 reports steps. */
export function decodeBatch(model: BatchableDenoiser, codes: readonly CycleCode[], rule: EpsilonRule, opts: DecodeOptions = {}): Promise<Float32Array[]> {
  return inLockstep(model, codes.length, (view, k) => decode(view, codes[k]!, rule, { ...opts, onStep: k === 0 ? opts.onStep : undefined }));
}

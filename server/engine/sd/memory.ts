/**
 * Memory of inference: an estimate of what a job needs (how CPU sessions use memory: runtime/sessions.ts),
 * from what can be read cheaply (file sizes) and the sizes it runs at, so a job that cannot fit is
 * refused before it starts instead of taking the machine down (a 2048 px demo job took 7–12 GB).
 *
 * Estimate. Peak memory ≈ process base + weights of the models in use + the largest single inference
 * call, where a call needs rows × (perPixel·P + perTokenPair·T²): P latent pixels, T = P / pixelsPerToken
 * tokens at the finest attention level (its score maps are what grows: quadratic in the image area).
 * Weights: the sessions' file sizes (onnxruntime holds them once, in the file's dtype). Factors: see
 * SD1_ACTIVATIONS (here) and the demo's (server/models/demo/memory.ts), each measured as stated there.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { DERIVED_UNET_PATTERN } from '../attention/unet-cache.ts';

export interface ActivationFactors {
  /** Bytes per latent pixel, per batch row (feature maps, skip connections). */
  perPixel: number;
  /** Bytes per pair of tokens at the finest attention level, per row (score maps of all heads, softmax copies). */
  perTokenPair: number;
  /** Latent pixels per token at that level: 1 at full latent resolution, 4 at half; 0 without attention. */
  pixelsPerToken: number;
  /**
   * UNet: bytes per latent pixel and row for each conditioning beyond the first that an attention-merge
   * UNet attends to (its cross-attention scores and output, kept until the N are blended; every row of
   * the rewritten graph, ∅ included, computes all N).
   */
  perPixelPerConditioning?: number;
}

export interface ActivationProfile {
  unet: ActivationFactors;
  vaeEncoder: ActivationFactors;
  vaeDecoder: ActivationFactors;
}

/**
 * Stable Diffusion 1.x. Score maps: measured on the reference tiny-sd export, which has SD 1.x's
 * structure (attention at full latent resolution, 8 heads): peak RSS minus RSS after loading, one row,
 * was 131 MiB at latent 32, 2112 MiB at 64 and 8167 MiB at 96 (101–132 bytes per token pair); its VAE
 * decoder 274 MiB at latent 64 and 3195 MiB at 128 (12.5–17 bytes per pair: the mid-block's one-head
 * attention at latent size). Feature maps: tiny-sd's widths are too small to show them, so they are
 * taken from SD 1.x's widths: UNet 320 channels at full latent size × fp32 × ~25 live tensors
 * (skip connections included) ≈ 32 KiB per latent pixel; VAE 128 channels at image size (64 image
 * pixels per latent pixel) × fp32 × ~6 live tensors ≈ 192 KiB per latent pixel. Upper bounds for
 * narrower models.
 */
export const SD1_ACTIVATIONS: ActivationProfile = {
  // A further conditioning of an attention merge: 8 heads × 77 tokens of scores and their softmax, and a
  // 320-channel output, fp32, at full latent size (the finest cross-attention): ≈ 6 KiB per latent pixel.
  unet: { perPixel: 32 * 1024, perTokenPair: 136, pixelsPerToken: 1, perPixelPerConditioning: 6 * 1024 },
  vaeEncoder: { perPixel: 192 * 1024, perTokenPair: 17, pixelsPerToken: 1 },
  vaeDecoder: { perPixel: 192 * 1024, perTokenPair: 17, pixelsPerToken: 1 },
};

/** Node.js, onnxruntime and sharp themselves (the demo's RSS after loading is ~120 MiB, weights 4 MB). */
export const PROCESS_BASE_BYTES = 128 * 1024 * 1024;

/** Measured factors are multiplied by this: allocator slack, and sizes between the measured ones. */
const SAFETY = 1.25;

export interface ModelMemoryProfile extends ActivationProfile {
  /** A name for messages (the folder's name). */
  label: string;
  /** Bytes of the four sessions' files (graphs and weights). */
  weightsBytes: number;
  /** The UNet's share (held once: the attention-merge rewrite replaces the stock session, sd/unet-slot.ts). */
  unetWeightsBytes: number;
  /** Image pixels per latent pixel, per side. */
  vaeDownsample: number;
}

export type InferenceStage = 'unet' | 'vae-encode' | 'vae-decode';

/** One inference call a job will make: a stage of a model at a latent size, with `rows` batch rows. */
export interface InferenceWork {
  model: ModelMemoryProfile;
  stage: InferenceStage;
  rows: number;
  latentWidth: number;
  latentHeight: number;
  /** The UNet call is an attention merge (the model's one UNet session, rewritten for N conditionings). */
  attentionMerge?: boolean;
  /** Attention merge: the styles its merged row attends to in every cross-attention layer (2 when absent). */
  styles?: number;
  /**
   * The call runs on the attention-maps UNet (words masks: SdPipeline.attentionMapsUnet), a session of its
   * own beside the slot's, holding a second copy of the UNet's weights while the model stays loaded.
   */
  attentionMaps?: boolean;
  /** Who makes the call, for messages ("Epsilon Merge Sampler (eps)"). */
  by?: string;
}

async function filesBytes(dir: string): Promise<number> {
  let total = 0;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    if (name.startsWith('.') || DERIVED_UNET_PATTERN.test(name)) continue;
    try {
      const s = await stat(path.join(dir, name));
      if (s.isFile()) total += s.size;
    } catch {
      /* gone meanwhile */
    }
  }
  return total;
}

/** The memory profile of a model folder: its file sizes and the activation factors of its family. */
export async function modelMemoryProfile(
  dir: string,
  opts: { label: string; activations?: ActivationProfile; vaeDownsample?: number },
): Promise<ModelMemoryProfile> {
  const [text, unet, encoder, decoder] = await Promise.all(
    ['text_encoder', 'unet', 'vae_encoder', 'vae_decoder'].map((sub) => filesBytes(path.join(dir, sub))),
  );
  return {
    label: opts.label,
    weightsBytes: text! + unet! + encoder! + decoder!,
    unetWeightsBytes: unet!,
    vaeDownsample: opts.vaeDownsample ?? 8,
    ...(opts.activations ?? SD1_ACTIVATIONS),
  };
}

function factorsOf(work: InferenceWork): ActivationFactors {
  return work.stage === 'unet' ? work.model.unet : work.stage === 'vae-encode' ? work.model.vaeEncoder : work.model.vaeDecoder;
}

/** Bytes one call needs beyond the weights. */
export function activationBytes(work: InferenceWork): number {
  const f = factorsOf(work);
  const pixels = work.latentWidth * work.latentHeight;
  const tokens = f.pixelsPerToken > 0 ? pixels / f.pixelsPerToken : 0;
  // Every row of an attention-merge UNet attends to N conditionings where a stock row attends to one.
  const conditionings = work.attentionMerge ? (work.styles ?? 2) - 1 : 0;
  return SAFETY * work.rows * (f.perPixel * pixels + f.perTokenPair * tokens * tokens + conditionings * (f.perPixelPerConditioning ?? 0) * pixels);
}

export interface MemoryEstimate {
  /** Peak of the process while the job runs. */
  totalBytes: number;
  weightsBytes: number;
  /** The call that needs the most, and how much. */
  largest?: { work: InferenceWork; bytes: number };
}

/**
 * A job's peak: the process base, the weights of every model it uses, once (one UNet session serves the
 * stock samplers and attention merges of any N: sd/unet-slot.ts), the UNet's weights again for a model
 * whose attention maps are recorded (their session is a second one), and its largest call (calls run one
 * at a time and free their intermediates when they return).
 */
export function estimateJobMemory(works: readonly InferenceWork[]): MemoryEstimate {
  const models = new Set<ModelMemoryProfile>();
  const withMaps = new Set<ModelMemoryProfile>();
  let largest: MemoryEstimate['largest'];
  for (const work of works) {
    models.add(work.model);
    if (work.attentionMaps) withMaps.add(work.model);
    const bytes = activationBytes(work);
    if (!largest || bytes > largest.bytes) largest = { work, bytes };
  }
  const weightsBytes = [...models].reduce((sum, model) => sum + model.weightsBytes, 0) + [...withMaps].reduce((sum, model) => sum + model.unetWeightsBytes, 0);
  return { totalBytes: PROCESS_BASE_BYTES + weightsBytes + (largest?.bytes ?? 0), weightsBytes, ...(largest ? { largest } : {}) };
}

/**
 * Activation factors of the demo model for the memory estimate (engine/sd/memory.ts), measured:
 * peak RSS minus RSS after loading, one call, CPU (onnxruntime-node 1.29).
 *   UNet (attention at half latent resolution only, one head there): 1 row: 48 MiB at latent 96,
 *     144 MiB at latent 128; 3 rows: 35 MiB at 64, 139 MiB at 96, 423 MiB at 128. Fitted per row:
 *     ~630 bytes per latent pixel + ~8.4 bytes per token pair (tokens = latent pixels / 4); rounded up.
 *   Attention merge, rows [∅, merged], the rewrite loaded first: N = 2, 4, 8 styles: 21.9, 23.0, 23.4 MiB
 *     at latent 64, 95.8, 96.5, 96.1 MiB at latent 96 (stock UNet, 2 rows: 22.0 and 95.9 MiB): each further
 *     conditioning ≤ ~40 bytes per latent pixel for the two rows (one head, at half resolution); 32 per row taken.
 *   VAE decoder (no attention): 62 MiB at latent 64, 241 MiB at 128: ~16 KiB per latent pixel.
 *   VAE encoder: 10 MiB at latent 64, 29 MiB at 128: ≤ 2.5 KiB per latent pixel.
 */
import type { ActivationProfile } from '../../engine/sd/memory.ts';

export const DEMO_ACTIVATIONS: ActivationProfile = {
  unet: { perPixel: 1024, perTokenPair: 10, pixelsPerToken: 4, perPixelPerConditioning: 32 },
  vaeEncoder: { perPixel: 2.5 * 1024, perTokenPair: 0, pixelsPerToken: 0 },
  vaeDecoder: { perPixel: 16 * 1024, perTokenPair: 0, pixelsPerToken: 0 },
};

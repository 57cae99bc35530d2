/** Wires the engine's step callback to the node context: progress every step, throttled previews of x̂0. */
import type { StepCallback } from '../../server/engine/diffusion/cycle.ts';
import type { NodeContext } from '../types.ts';

export function stepReporter(ctx: NodeContext, latentW: number, latentH: number): StepCallback {
  const decoder = ctx.services.previewDecoder;
  return (step, total, x0hat) => {
    ctx.progress(step, total);
    if (!ctx.previewDue()) return;
    // With a preview decoder, a frame it has no time budget for is skipped (a later step offers the
    // next one); a decoder that failed gives way to the projection.
    const decoded = decoder?.usable === true;
    if (decoded && !decoder.due()) return;
    // The engine reuses x0hat; copy only the frames that will actually be sent.
    ctx.preview(step, total, { kind: 'latent', data: x0hat.slice(), width: latentW, height: latentH, ...(decoded ? { decoder } : {}) });
  };
}

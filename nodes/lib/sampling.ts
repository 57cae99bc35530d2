/** Wires the engine's step callback to the node context: progress every step, throttled previews of x̂0. */
import type { StepCallback } from '../../server/engine/diffusion/cycle.ts';
import type { NodeContext } from '../types.ts';

export function stepReporter(ctx: NodeContext, latentW: number, latentH: number): StepCallback {
  return (step, total, x0hat) => {
    ctx.progress(step, total);
    // The engine reuses x0hat; copy only the frames that will actually be sent.
    if (ctx.previewDue()) ctx.preview(step, total, { kind: 'latent', data: x0hat.slice(), width: latentW, height: latentH });
  };
}

/**
 * A Denoiser that records cross-attention maps while it denoises: the same noise prediction as the
 * pipeline's UNet, computed by the attention-maps UNet (attention/attention-maps.ts), whose extra
 * outputs are averaged into one map per text token at the latent grid. The inversion runs on it when
 * a words mask is wanted, so the maps cost no extra UNet call: they are read off the calls the
 * inversion makes anyway. The prompt's row is the last row of each call (the single-prompt rule's
 * rows are [c], or [∅, c] with guidance).
 */
import type { Denoiser } from '../diffusion/denoiser.ts';
import { AttentionMapAverage } from '../attention/attention-maps.ts';
import { floatTensor, numberTensor, tensorToFloat32, type OrtTensor } from '../runtime/runtime.ts';
import type { SdPipeline } from './pipeline.ts';
import { checkFixedBatch, timestepDims } from './unet-binding.ts';

export interface AttentionMapsRecording {
  denoiser: Denoiser;
  /** The running mean of the maps of the prompt row, over layers and calls. */
  average: AttentionMapAverage;
}

/** A recording denoiser over `pipe` for w×h latents (the attention-maps UNet is opened here). */
export async function recordAttentionMaps(pipe: SdPipeline, w: number, h: number): Promise<AttentionMapsRecording> {
  const { binding: b, outputs } = await pipe.attentionMapsUnet();
  const average = new AttentionMapAverage(w, h);
  const C = pipe.info.latentChannels;
  const denoiser: Denoiser = {
    info: pipe.info,
    checkLatentSize: (lw, lh) => pipe.checkLatentSize(lw, lh),
    unconditional: () => pipe.unconditional(),
    attentionMergeExtras: () => Promise.reject(new Error('attention maps are recorded by the single-prompt inversion, not by attention merge')),
    async unet(sample, batch, sh, sw, t, ehs, extras) {
      if (extras && Object.keys(extras).length > 0) throw new Error('attention maps are recorded on the plain UNet only');
      if (sw !== w || sh !== h) throw new Error(`this recording is for ${w}×${h} latents, got ${sw}×${sh}`);
      if (sample.length !== batch * C * h * w)
        throw new Error(`UNet sample has ${sample.length} values, [${batch}, ${C}, ${h}, ${w}] needs ${batch * C * h * w}`);
      pipe.checkLatentSize(w, h);
      checkFixedBatch(b, batch);
      const D = pipe.info.textDim;
      const tsDims = timestepDims(b.timestep, batch);
      const feeds: Record<string, OrtTensor> = {
        [b.sample.name]: floatTensor(b.sample.type, sample, [batch, C, h, w]),
        [b.timestep.name]: numberTensor(b.timestep.type, new Float64Array(tsDims.length === 0 ? 1 : tsDims[0]!).fill(t), tsDims),
        [b.ehs.name]: floatTensor(b.ehs.type, ehs, [batch, ehs.length / batch / D, D]),
      };
      const t0 = performance.now();
      const res = await b.session.run(feeds, [b.output, ...outputs]);
      pipe.stats.unetCalls++;
      pipe.stats.unetRows += batch;
      pipe.stats.unetMs += performance.now() - t0;
      for (const name of outputs) {
        const map = res[name]!;
        average.add(tensorToFloat32(map), map.dims, batch - 1);
      }
      const out = res[b.output]!;
      if (out.size !== sample.length) throw new Error(`UNet returned ${out.size} values for a sample of ${sample.length}`);
      return tensorToFloat32(out);
    },
  };
  return { denoiser, average };
}

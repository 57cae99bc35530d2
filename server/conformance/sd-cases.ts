/**
 * The conformance cases of a Stable Diffusion fixture, one row per stage, in the order a run meets
 * them. Each row names its cases (some expand per reference file, e.g. one UNet call per
 * unet_out_t<T>.npy) and says how to compute ours; the harness compares, records and prints.
 * A case whose reference file is absent is not listed: other fixtures may carry fewer stages.
 */
import { decode, invert } from '../engine/diffusion/cycle.ts';
import { attentionMerge, epsilonMerge, singlePrompt, type EpsilonRule } from '../engine/diffusion/guidance.ts';
import { regionalMerge } from '../engine/diffusion/regions.ts';
import { arrayNoise, splitChunks } from '../engine/diffusion/noise.ts';
import { pixelMerge } from '../engine/diffusion/pixel-merge.ts';
import type { Fixture } from './fixture.ts';
import { decodedTolerance } from './tolerance.ts';

/** What a case computes: arrays compared within the tolerance, or an exact check (token ids). */
export type Outcome =
  | {
      kind: 'numeric';
      ours: ArrayLike<number>;
      reference: ArrayLike<number>;
      /** absolute tolerance; default 1e-3·max(1, max|ref|) (scaled in fp16 runs) */
      tol?: number;
      /** an absolute tolerance the case has at least, as it is (decodedTolerance) */
      atLeast?: number;
    }
  | { kind: 'exact'; mismatches: number; detail: string };

export interface Case {
  name: string;
  compute(): Promise<Outcome>;
}

type CaseRow = (fx: Fixture) => Case[] | Promise<Case[]>;

/** A case compared with reference/<name>.npy. */
function numeric(fx: Fixture, name: string, ours: () => Promise<ArrayLike<number>>): Case {
  return { name, compute: async () => ({ kind: 'numeric', reference: (await fx.ref(name)).data, ours: await ours() }) };
}

function short(text: string, n = 40): string {
  return text.length <= n ? JSON.stringify(text) : JSON.stringify(text.slice(0, n - 1) + '…');
}

const SHAPES = ['linear', 'logistic'] as const;

/** Decoders replay the reference code under a rule, checked as latent and as decoded image. */
function decodeCases(fx: Fixture, prefix: string, rule: () => Promise<EpsilonRule>): Case[] {
  if (!fx.has(`${prefix}_latent.npy`)) return [];
  let latent: Float32Array | null = null;
  const cases = [numeric(fx, `${prefix}_latent`, async () => (latent = await decode(fx.pipe, await fx.code(), await rule())))];
  if (fx.has(`${prefix}_image.npy`)) {
    cases.push({
      name: `${prefix}_image`,
      compute: async (): Promise<Outcome> => {
        // Decode our own latent (end to end); the reference latent only when ours failed.
        const { latent_width: lw, latent_height: lh, width: W, height: H } = fx.manifest;
        const vaeDecode = async (l: Float32Array) => {
          const img = await fx.pipe.vaeDecode(l, lw, lh);
          if (img.width !== W || img.height !== H) throw new Error(`decoded ${img.width}×${img.height}, expected ${W}×${H}`);
          return img.data;
        };
        const refLatent = (await fx.ref(`${prefix}_latent`)).data;
        const ours = await vaeDecode(latent ?? refLatent);
        const reference = (await fx.ref(`${prefix}_image`)).data;
        return { kind: 'numeric', ours, reference, ...(fx.fp16 ? { atLeast: await decodedTolerance(refLatent, vaeDecode) } : {}) };
      },
    });
  }
  return cases;
}

export const SD_CASES: { stage: string; cases: CaseRow }[] = [
  {
    stage: "VAE scaling factor: the manifest's, where it states one, is the model folder's",
    cases: (fx) => {
      const stated = fx.manifest.vae_scaling_factor;
      if (typeof stated !== 'number') return [];
      return [
        {
          name: 'vae_scaling_factor',
          async compute() {
            const ours = fx.pipe.info.vaeScalingFactor;
            const same = Math.abs(stated - ours) <= 1e-12;
            return { kind: 'exact', mismatches: same ? 0 : 1, detail: same ? `${ours}` : `manifest says ${stated}, the model folder gives ${ours}` };
          },
        },
      ];
    },
  },
  {
    stage: 'tokenizer: exact ids of tokenizer_cases.json',
    async cases(fx) {
      if (!fx.has('tokenizer_cases.json')) return [];
      const tc = await fx.json<{ prompt: string; input_ids: number[] }[]>('tokenizer_cases.json');
      return tc.map((c, i) => ({
        name: `tokenizer_${i}`,
        async compute() {
          const ids = fx.pipe.tokenizer.encode(c.prompt).ids;
          const length = Math.max(ids.length, c.input_ids.length);
          const wrong = Array.from({ length }, (_, j) => j).filter((j) => ids[j] !== c.input_ids[j]);
          const first = wrong[0] ?? -1;
          const detail =
            wrong.length === 0
              ? `exact ids  ${short(c.prompt)}`
              : `${wrong.length} ids differ (first at ${first}: ${ids[first]} vs ${c.input_ids[first]})  ${short(c.prompt)}`;
          return { kind: 'exact', mismatches: wrong.length, detail };
        },
      }));
    },
  },
  {
    stage: 'text encoder: last_hidden_state of each prompt',
    cases: (fx) => {
      const P = fx.manifest.prompts;
      return (
        [
          ['text_uncond', P.uncond],
          ['text_src', P.source],
          ['text_c1', P.style1],
          ['text_c2', P.style2],
        ] as const
      ).map(([name, prompt]) => numeric(fx, name, () => fx.text(prompt)));
    },
  },
  {
    stage: 'schedule: τ, a, a_prev, σ of the R = steps − skip entries used',
    cases: (fx) => {
      if (!fx.has('schedule.json')) return [];
      return [
        {
          name: 'schedule',
          async compute() {
            // LDM lists every k of range(0, 1000, c) + 1: S entries, or ⌈1000/c⌉ when S does not divide 1000; R are used.
            const s = await fx.json<Record<string, number[] | undefined>>('schedule.json');
            const R = fx.refinementSteps;
            const ours = fx.schedule;
            const used = (list: number[] | undefined, key: string) => {
              if (!list || list.length < R) throw new Error(`schedule.json: ${key} has ${list?.length ?? 0} entries, the first ${R} are used`);
              return list.slice(0, R);
            };
            const timesteps = used(s.timesteps, 'timesteps');
            const wrong = timesteps.findIndex((t, k) => t !== ours.timesteps[k]);
            if (wrong >= 0) throw new Error(`timesteps differ at k = ${wrong}: ours ${ours.timesteps[wrong]}, reference ${timesteps[wrong]}`);
            const keys = [
              ['alphas', 'alphas'],
              ['alphas_prev', 'alphasPrev'],
              ['sigmas', 'sigmas'],
            ] as const;
            const flat = (get: (k: (typeof keys)[number]) => number[] | undefined) => keys.flatMap((k) => used(get(k), k[0]));
            return { kind: 'numeric', ours: flat((k) => ours[k[1]]), reference: flat((k) => s[k[0]]) };
          },
        },
      ];
    },
  },
  {
    stage: 'masks at latent size',
    cases: (fx) =>
      SHAPES.filter((shape) => fx.has(`mask_${shape}.npy`)).map((shape) =>
        numeric(fx, `mask_${shape}`, async () => fx.mask(shape).weights(fx.manifest.latent_width, fx.manifest.latent_height)[0]!),
      ),
  },
  {
    stage: 'UNet: one call per unet_out_t<T>.npy',
    cases: (fx) =>
      fx.list().flatMap((f) => {
        const m = /^unet_out_t(\d+)\.npy$/.exec(f);
        if (!m) return [];
        return [
          numeric(fx, f.slice(0, -4), async () => {
            const [sample, ehs] = await Promise.all([fx.ref('unet_in_sample'), fx.ref('unet_in_ehs')]);
            const [batch, , h, w] = sample.shape as [number, number, number, number];
            return fx.pipe.unet(sample.data, batch, h, w, Number(m[1]), ehs.data);
          }),
        ];
      }),
  },
  {
    stage: 'VAE encoder: the scaled posterior mean x0',
    cases: (fx) => [
      numeric(fx, 'x0', async () => {
        const { width: W, height: H } = fx.manifest;
        const image = await fx.ref('image');
        const [, , ih, iw] = image.shape as [number, number, number, number];
        if (ih !== H || iw !== W) throw new Error(`reference image is ${iw}×${ih}, the manifest says ${W}×${H}`);
        return fx.pipe.vaeEncode({ width: W, height: H, data: image.data });
      }),
    ],
  },
  {
    stage: 'CycleDiffusion inversion, from the reference x0 and noise',
    cases: (fx) => [
      numeric(fx, 'cycle_z', async () => {
        const m = fx.manifest;
        const R = fx.refinementSteps;
        const [x0, noise] = await Promise.all([fx.ref('x0'), fx.ref('noise')]);
        if (noise.shape[0] !== R + 1) throw new Error(`noise.npy has ${noise.shape[0]} draws; steps ${m.steps} − skip ${m.skip} needs ${R + 1}`);
        const code = await invert(fx.pipe, x0.data, m.latent_width, m.latent_height, {
          source: await fx.text(m.prompts.source),
          guidance: m.encoder_guidance,
          steps: m.steps,
          skip: m.skip,
          eta: m.eta,
          noise: arrayNoise(splitChunks(noise.data, noise.shape[0]!)),
        });
        const flat = new Float32Array(code.z.length * code.z[0]!.length);
        code.z.forEach((z, i) => flat.set(z, i * z.length));
        return flat;
      }),
    ],
  },
  {
    stage: 'reconstruction: the encoder prompt and guidance reproduce x0',
    cases: (fx) => decodeCases(fx, 'recon', async () => singlePrompt(await fx.text(fx.manifest.prompts.source), fx.manifest.encoder_guidance)),
  },
  {
    stage: 'epsilon merge',
    cases: (fx) => {
      const { prompts: P, decoder_guidance: s } = fx.manifest;
      return SHAPES.flatMap((shape) =>
        decodeCases(fx, `epsmerge_${shape}`, async () => epsilonMerge([await fx.text(P.style1), await fx.text(P.style2)], s, fx.mask(shape))),
      );
    },
  },
  {
    // The fixture README defines each: region 2 with the source prompt as its negative and half the
    // guidance; the source prompt as a base at ratio 0.3; style 1 from 40% of the decode (the source
    // prompt before).
    stage: 'regional control (epsilon merge, linear mask): per-region negative and guidance, base prompt, step window',
    cases: async (fx) => {
      const { prompts: P, decoder_guidance: s } = fx.manifest;
      const regional = { negative_guidance_factor: 0.5, base_ratio: 0.3, window_start: 0.4 };
      const texts = async () => Promise.all([fx.text(P.style1), fx.text(P.style2), fx.text(P.source)]);
      const mask = fx.mask('linear');
      return [
        ...decodeCases(fx, 'region_negative_linear', async () => {
          const [c1, c2, src] = await texts();
          return regionalMerge([{ prompt: c1 }, { prompt: c2, negative: src, guidance: s * regional.negative_guidance_factor }], s, mask);
        }),
        ...decodeCases(fx, 'region_base_linear', async () => {
          const [c1, c2, src] = await texts();
          return regionalMerge([{ prompt: c1 }, { prompt: c2 }], s, mask, { prompt: src, ratio: regional.base_ratio });
        }),
        ...decodeCases(fx, 'region_window_linear', async () => {
          const [c1, c2, src] = await texts();
          return regionalMerge([{ prompt: c1, window: { start: regional.window_start, end: 1, fallback: src } }, { prompt: c2 }], s, mask);
        }),
      ];
    },
  },
  {
    stage: 'single-prompt decodes',
    cases: (fx) => {
      const { prompts: P, decoder_guidance: s } = fx.manifest;
      return (
        [
          ['c1', P.style1],
          ['c2', P.style2],
        ] as const
      ).flatMap(([which, prompt]) => decodeCases(fx, `single_${which}`, async () => singlePrompt(await fx.text(prompt), s)));
    },
  },
  {
    stage: 'pixel merge of the reference single-style images, mask at image size',
    cases: (fx) =>
      SHAPES.filter((shape) => fx.has(`pixelmerge_${shape}_image.npy`)).map((shape) =>
        numeric(fx, `pixelmerge_${shape}_image`, async () => {
          const { width, height } = fx.manifest;
          const [a, b] = await Promise.all([fx.ref('single_c1_image'), fx.ref('single_c2_image')]);
          return pixelMerge(
            [
              { width, height, data: a.data },
              { width, height, data: b.data },
            ],
            fx.mask(shape),
          ).data;
        }),
      ),
  },
  {
    stage: 'attention-merge UNet: one call per attnmerge_out_t<T>_<mask>.npy',
    cases: (fx) =>
      fx.list().flatMap((f) => {
        const m = /^attnmerge_out_t(\d+)_(\w+)\.npy$/.exec(f);
        if (!m) return [];
        return [
          numeric(fx, f.slice(0, -4), async () => {
            const [sample, ehs, ehs2, mask] = await Promise.all([
              fx.ref('unet_in_sample'),
              fx.ref('unet_in_ehs'),
              fx.ref('unet_in_ehs2'),
              fx.ref(`mask_${m[2]}`),
            ]);
            const [batch, , h, w] = sample.shape as [number, number, number, number];
            const extras = await fx.pipe.attentionMergeExtras([ehs2.data], batch, mask.data.subarray(0, h * w), w, h);
            return fx.pipe.unet(sample.data, batch, h, w, Number(m[1]), ehs.data, extras);
          }),
        ];
      }),
  },
  {
    stage: 'attention merge',
    cases: (fx) => {
      const { prompts: P, decoder_guidance: s } = fx.manifest;
      return SHAPES.flatMap((shape) =>
        decodeCases(fx, `attnmerge_${shape}`, async () => attentionMerge([await fx.text(P.style1), await fx.text(P.style2)], s, fx.mask(shape))),
      );
    },
  },
];

/** The LoRA of a fixture in the PyTorch layout (lora/manifest.json): its file and strengths, never assumed. */
export interface LoraManifest {
  file: string;
  strength: number;
  strength_unet?: number;
  strength_text?: number;
  rank?: number;
  alpha?: number;
}

const PROMPT_OF: Record<string, 'uncond' | 'source' | 'style1' | 'style2'> = { uncond: 'uncond', src: 'source', c1: 'style1', c2: 'style2' };

/**
 * Cases run on the model with the fixture's LoRA merged (`fx.pipe` is that model): lora_text_<prompt>.npy
 * (last_hidden_state, prompt uncond/src/c1/c2) and lora_unet_out_t<T>.npy (the UNet call of unet_out_t<T>).
 */
export const LORA_CASES: { stage: string; cases: CaseRow }[] = [
  {
    stage: 'LoRA: text encoder and UNet with the LoRA merged at the manifest strength',
    cases: (fx) =>
      fx.list().flatMap((f) => {
        const text = /^lora_text_(uncond|src|c1|c2)\.npy$/.exec(f);
        if (text) return [numeric(fx, f.slice(0, -4), () => fx.text(fx.manifest.prompts[PROMPT_OF[text[1]!]!]))];
        const unet = /^lora_unet_out_t(\d+)\.npy$/.exec(f);
        if (!unet) return [];
        return [
          numeric(fx, f.slice(0, -4), async () => {
            const [sample, ehs] = await Promise.all([fx.ref('unet_in_sample'), fx.ref('unet_in_ehs')]);
            const [batch, , h, w] = sample.shape as [number, number, number, number];
            return fx.pipe.unet(sample.data, batch, h, w, Number(unet[1]), ehs.data);
          }),
        ];
      }),
  },
];

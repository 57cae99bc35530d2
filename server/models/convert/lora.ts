/**
 * LoRA files merged into a model's weights at conversion: W + s·(alpha/r)·(up @ down) for every module
 * the LoRA names. Two formats: kohya's (`lora_unet_<module path with _>` / `lora_te_<…>`, with
 * `.lora_down.weight` [r, in(, k, k)], `.lora_up.weight` [out, r(, 1, 1)] and `.alpha`), which most
 * published LoRAs use, and diffusers/PEFT's (`unet.<module>.lora_A.weight` / `.lora_B.weight`, or the
 * older `.lora.down.weight` / `.lora.up.weight`; alpha = r unless an `.alpha` tensor says otherwise).
 * A module is matched to the model's weights by name and shape; a LoRA with modules this model does not
 * have (SDXL's, SD 2.x's) is refused, naming some of them, before anything is written.
 */
import path from 'node:path';
import { withSafetensors, type SafetensorsFile } from './safetensors.ts';
import type { Component } from './checkpoint.ts';
import { ConversionError, type WeightDelta } from './weights.ts';

export interface LoraRequest {
  file: string;
  /** Strength on the UNet's weights. */
  unet: number;
  /** Strength on the text encoder's weights. */
  text: number;
}

interface LoraModule {
  /** The LoRA's own name for the module, for messages. */
  name: string;
  down: Float32Array;
  downShape: number[];
  up: Float32Array;
  upShape: number[];
  alpha: number;
}

/** The model's weights a LoRA may touch: per component, diffusers key → shape in the checkpoint's layout ([out, in(, k, k)]). */
export type ModelWeights = ReadonlyMap<Component, ReadonlyMap<string, readonly number[]>>;

const PAIRS: [down: string, up: string][] = [
  ['.lora_down.weight', '.lora_up.weight'],
  ['.lora_A.weight', '.lora_B.weight'],
  ['.lora.down.weight', '.lora.up.weight'],
];

/** The modules of a LoRA file, by module name (the key without its down/up/alpha suffix). */
function readModules(f: SafetensorsFile): Map<string, LoraModule> {
  const modules = new Map<string, LoraModule>();
  const label = path.basename(f.file);
  for (const key of f.keys()) {
    const pair = PAIRS.find(([down]) => key.endsWith(down));
    if (!pair) continue;
    const name = key.slice(0, -pair[0].length);
    const upKey = name + pair[1];
    if (!f.has(upKey)) throw new ConversionError(`${label}: "${key}" has no "${upKey}"`);
    const downShape = f.info(key).shape;
    const upShape = f.info(upKey).shape;
    const rank = downShape[0]!;
    if (downShape.length < 2 || upShape.length < 2 || upShape[1] !== rank || upShape.slice(2).some((d) => d !== 1)) {
      throw new ConversionError(
        `${label}: module "${name}" has down [${downShape.join(', ')}] and up [${upShape.join(', ')}], which do not make a rank-${rank} product`,
      );
    }
    const alphaKey = [`${name}.alpha`, `${name.replace(/\.lora$/, '')}.alpha`].find((k) => f.has(k));
    const alpha = alphaKey ? f.readFloat32(alphaKey)[0]! : rank;
    if (!Number.isFinite(alpha)) throw new ConversionError(`${label}: module "${name}" has alpha ${alpha}`);
    modules.set(name, { name, down: f.readFloat32(key), downShape, up: f.readFloat32(upKey), upShape, alpha });
  }
  const stray = f.keys().filter((k) => !k.endsWith('.alpha') && !PAIRS.some(([d, u]) => k.endsWith(d) || k.endsWith(u)));
  if (modules.size === 0)
    throw new ConversionError(
      `${label}: no LoRA modules (no lora_down/lora_up or lora_A/lora_B tensors)${stray.length ? `; it holds ${stray.slice(0, 3).join(', ')}…` : ''}`,
    );
  return modules;
}

/** The model weight a LoRA module name refers to: kohya names by the model's keys with "_" for ".", PEFT names as they are. */
function targetOf(name: string, kohya: Map<string, [Component, string]>, weights: ModelWeights): [Component, string] | null {
  const hit = kohya.get(name);
  if (hit) return hit;
  const peft = /^(?:base_model\.model\.)?(unet|text_encoder)\.(.+)$/.exec(name);
  const [component, module]: [Component, string] = peft
    ? [peft[1] === 'unet' ? 'unet' : 'text', peft[2]!]
    : [name.startsWith('text_model.') ? 'text' : 'unet', name];
  const key = `${module.replace(/\.processor\.(to_[qkv]|to_out)_lora$/, '.$1').replace(/\.(to_out)$/, '.$1.0')}.weight`;
  return weights.get(component)?.has(key) ? [component, key] : null;
}

/**
 * The deltas of `loras` on the model whose weights are `weights`, one WeightDelta per component: for each
 * weight key, the sum over the LoRAs of strength·(alpha/r)·(up @ down), shaped like the weight. Refuses a
 * LoRA whose modules do not all match a weight of this model with the right shape.
 */
export function loraDeltas(loras: LoraRequest[], weights: ModelWeights): Partial<Record<Component, WeightDelta>> {
  const kohya = new Map<string, [Component, string]>();
  for (const [component, keys] of weights) {
    const prefix = component === 'unet' ? 'lora_unet_' : 'lora_te_';
    for (const key of keys.keys()) if (key.endsWith('.weight')) kohya.set(prefix + key.slice(0, -'.weight'.length).replace(/\./g, '_'), [component, key]);
  }
  const perKey = new Map<string, { module: LoraModule; scale: number }[]>();
  for (const lora of loras) {
    const label = path.basename(lora.file);
    const modules = withSafetensors(lora.file, readModules);
    const unmatched: string[] = [];
    for (const m of modules.values()) {
      const target = targetOf(m.name, kohya, weights);
      if (!target) {
        unmatched.push(m.name);
        continue;
      }
      const [component, key] = target;
      const shape = weights.get(component)!.get(key)!;
      const inner = m.downShape.slice(1).reduce((a, b) => a * b, 1);
      const wanted = shape.slice(1).reduce((a, b) => a * b, 1);
      if (m.upShape[0] !== shape[0] || inner !== wanted) {
        throw new ConversionError(
          `${label}: module "${m.name}" makes a [${m.upShape[0]}, ${m.downShape.slice(1).join(', ')}] change for "${key}" of shape [${shape.join(', ')}]: the LoRA is for another architecture`,
        );
      }
      const strength = component === 'unet' ? lora.unet : lora.text;
      if (strength === 0) continue;
      const list = perKey.get(`${component}\0${key}`) ?? [];
      list.push({ module: m, scale: (strength * m.alpha) / m.downShape[0]! });
      perKey.set(`${component}\0${key}`, list);
    }
    if (unmatched.length > 0) {
      throw new ConversionError(
        `${label}: ${unmatched.length} of ${modules.size} LoRA modules match no weight of this model (${unmatched.slice(0, 3).join(', ')}${unmatched.length > 3 ? ', …' : ''}): ` +
          'is the LoRA for another architecture (SDXL, SD 2.x)?',
      );
    }
  }
  const deltaFor = (component: Component): WeightDelta => Object.assign(changeOf(component), { touches: (key: string) => perKey.has(`${component}\0${key}`) });
  const changeOf =
    (component: Component) =>
    (key: string, shape: readonly number[]): Float32Array | null => {
      const list = perKey.get(`${component}\0${key}`);
      if (!list) return null;
      const out = shape[0]!;
      const inner = shape.slice(1).reduce((a, b) => a * b, 1);
      const delta = new Float32Array(out * inner);
      for (const { module: m, scale } of list) {
        const r = m.downShape[0]!;
        for (let o = 0; o < out; o++) {
          for (let k = 0; k < r; k++) {
            const u = m.up[o * r + k]! * scale;
            if (u === 0) continue;
            const row = k * inner;
            const dst = o * inner;
            for (let i = 0; i < inner; i++) delta[dst + i] = delta[dst + i]! + u * m.down[row + i]!;
          }
        }
      }
      return delta;
    };
  return { unet: deltaFor('unet'), text: deltaFor('text') };
}

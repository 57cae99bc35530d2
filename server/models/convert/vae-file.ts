/**
 * A separate VAE file that replaces a model's own VAE (the common "vae-ft-mse" override): a .safetensors
 * holding an AutoencoderKL in the LDM layout (`encoder.down.0.block.0…`, as the published VAE files are,
 * with or without the `first_stage_model.` prefix) or in the diffusers layout
 * (`encoder.down_blocks.0.resnets.0…`, a diffusers vae/ file). Its architecture is read from its shapes;
 * EMA copies and the training loss's tensors in it are ignored.
 */
import path from 'node:path';
import type { VaeArchitecture } from '../demo/presets.ts';
import { detectVae, ldmVaeKey, VAE_PREFIX } from './ldm.ts';
import { openTensorFile } from './torch-file.ts';
import { ConversionError, type CheckpointPart } from './weights.ts';

export interface VaeFile {
  part: CheckpointPart;
  vae: VaeArchitecture;
  /** Keys of the file that are not the VAE's weights. */
  ignore: (key: string) => boolean;
}

/** Opens `file` as a VAE; `groups` where its widths match the model's own VAE (its config's groups), else 32. */
export function openVaeFile(file: string, model: VaeArchitecture): VaeFile {
  const f = openTensorFile(file);
  try {
    const label = path.basename(file);
    const prefix = f.keys().some((k) => k.startsWith(VAE_PREFIX)) ? VAE_PREFIX : '';
    const isWeight = (k: string) => k.startsWith(prefix) && /^(encoder|decoder|quant_conv|post_quant_conv)\./.test(k.slice(prefix.length));
    let vae: VaeArchitecture;
    let keyOf: (key: string) => string;
    if (f.has(`${prefix}encoder.down.0.block.0.conv1.weight`)) {
      vae = detectVae(f, prefix);
      keyOf = (k) => prefix + ldmVaeKey(k, vae.channels.length);
    } else if (f.has(`${prefix}encoder.down_blocks.0.resnets.0.conv1.weight`)) {
      const levels = new Set(
        f
          .keys()
          .map((k) => /^encoder\.down_blocks\.(\d+)\./.exec(k.slice(prefix.length))?.[1])
          .filter((i) => i !== undefined),
      );
      const channels = [...levels].map((i) => f.info(`${prefix}encoder.down_blocks.${i}.resnets.0.conv1.weight`).shape[0]!);
      const layers = new Set(
        f
          .keys()
          .map((k) => /^encoder\.down_blocks\.0\.resnets\.(\d+)\./.exec(k.slice(prefix.length))?.[1])
          .filter((i) => i !== undefined),
      );
      vae = { kind: 'full', channels, layersPerBlock: layers.size, groups: 32 };
      keyOf = (k) => prefix + k;
    } else {
      throw new ConversionError(`${label}: not a VAE (no encoder.down.0.block.0 or encoder.down_blocks.0.resnets.0 tensors)`);
    }
    const sameWidths = JSON.stringify(vae.channels) === JSON.stringify(model.channels) && vae.layersPerBlock === model.layersPerBlock;
    vae = { ...vae, groups: sameWidths ? model.groups : 32 };
    for (const c of vae.channels) if (c % vae.groups !== 0) throw new ConversionError(`${label}: ${c} channels do not split into ${vae.groups} groups`);
    return { part: { file: f, keyOf, label }, vae, ignore: (k) => !isWeight(k) };
  } catch (e) {
    f.close();
    throw e;
  }
}

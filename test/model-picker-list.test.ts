/**
 * What the editor's model pickers list (GET /api/models): each model with its kind, then the LoRA and
 * VAE files of the models folders told apart by their tensor names; a model folder's own weights are
 * not picks.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeSafetensors } from '../server/models/convert/safetensors.ts';
import { listModels } from '../server/models/model-list.ts';
import { listWeightFiles, weightFileKind } from '../server/models/weight-files.ts';

const tensor = (name: string) => ({ name, shape: [2], data: new Float32Array(2) });

describe('the model pickers’ lists', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'dss-picker-'));
    await mkdir(path.join(root, 'loras'), { recursive: true });
    await mkdir(path.join(root, 'vae'), { recursive: true });
    await mkdir(path.join(root, 'sd-pt', 'vae'), { recursive: true });
    await writeFile(path.join(root, 'one-file.safetensors'), encodeSafetensors([tensor('model.diffusion_model.out.2.bias')]));
    await writeFile(path.join(root, 'loras', 'ink.safetensors'), encodeSafetensors([tensor('lora_unet_down_blocks_0_attn.lora_down.weight')]));
    await writeFile(path.join(root, 'loras', 'peft.safetensors'), encodeSafetensors([tensor('unet.down.to_q.lora_A.weight')]));
    await writeFile(path.join(root, 'vae', 'ft-mse.safetensors'), encodeSafetensors([tensor('decoder.conv_in.bias')]));
    await writeFile(path.join(root, 'vae', 'ldm-vae.safetensors'), encodeSafetensors([tensor('first_stage_model.decoder.conv_in.bias')]));
    await writeFile(path.join(root, 'vae', 'notes.safetensors'), 'not a safetensors file');
    // A diffusers PyTorch folder: a model (its vae/ weights are its own, not a pick).
    await writeFile(path.join(root, 'sd-pt', 'model_index.json'), JSON.stringify({ _class_name: 'StableDiffusionPipeline' }));
    await writeFile(path.join(root, 'sd-pt', 'vae', 'diffusion_pytorch_model.safetensors'), encodeSafetensors([tensor('decoder.conv_in.bias')]));
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  it('tells a LoRA, a VAE and a checkpoint apart by their tensor names', () => {
    expect(weightFileKind(path.join(root, 'loras', 'ink.safetensors'))).toBe('lora');
    expect(weightFileKind(path.join(root, 'loras', 'peft.safetensors'))).toBe('lora');
    expect(weightFileKind(path.join(root, 'vae', 'ft-mse.safetensors'))).toBe('vae');
    expect(weightFileKind(path.join(root, 'vae', 'ldm-vae.safetensors'))).toBe('vae');
    expect(weightFileKind(path.join(root, 'one-file.safetensors'))).toBeNull();
    expect(weightFileKind(path.join(root, 'vae', 'notes.safetensors'))).toBeNull();
  });

  it('lists LoRA and VAE files by the names the nodes resolve, and leaves a model folder’s own files out', async () => {
    const files = await listWeightFiles([root]);
    expect(files.map((f) => [f.model, f.kind])).toEqual([
      ['loras/ink.safetensors', 'lora'],
      ['loras/peft.safetensors', 'lora'],
      ['vae/ft-mse.safetensors', 'vae'],
      ['vae/ldm-vae.safetensors', 'vae'],
    ]);
  });

  it('gives every model its kind', async () => {
    const models = await listModels([root]);
    expect(models.map((m) => [m.model, m.kind])).toEqual(
      expect.arrayContaining([
        ['demo', 'demo'],
        ['one-file.safetensors', 'checkpoint'],
      ]),
    );
    expect(models.every((m) => ['demo', 'onnx', 'diffusers', 'checkpoint'].includes(m.kind))).toBe(true);
  });
});

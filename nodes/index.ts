/**
 * The built-in node catalog: every node type the studio ships. Add a module here to ship a node with the
 * studio; a node package adds its own without a fork (the node API in nodes/api.ts, loaded by
 * server/node-packages/load.ts).
 */
import type { AnyNodeDefinition } from './types.ts';
import { loadModel } from './load-model.ts';
import { loadLora } from './load-lora.ts';
import { loadImage } from './load-image.ts';
import { textPrompt } from './text-prompt.ts';
import { encodeText } from './encode-text.ts';
import { regionNode } from './region.ts';
import { vaeEncode, vaeDecode } from './vae.ts';
import { invertNode } from './invert.ts';
import { maskNode } from './mask.ts';
import { attentionMergeSampler, epsilonMergeSampler, singlePromptSampler } from './samplers.ts';
import { pixelMergeNode } from './pixel-merge.ts';
import { saveImage } from './save-image.ts';
import { loadClip } from './load-clip.ts';
import { metricsNode, metricsTable } from './metrics.ts';

export const nodeDefinitions: AnyNodeDefinition[] = [
  loadModel,
  loadLora,
  loadImage,
  textPrompt,
  encodeText,
  regionNode,
  vaeEncode,
  invertNode,
  maskNode,
  epsilonMergeSampler,
  attentionMergeSampler,
  singlePromptSampler,
  pixelMergeNode,
  vaeDecode,
  saveImage,
  loadClip,
  metricsNode,
  metricsTable,
];

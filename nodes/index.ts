/** The node catalog: every node type the server can run. Add a module here to ship a node. */
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

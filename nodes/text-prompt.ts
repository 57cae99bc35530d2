import { z } from 'zod';
import { defineNode } from './types.ts';
import { PROMPT_PRESETS, substituteSubject } from './lib/presets.ts';

export const textPrompt = defineNode({
  type: 'TextPrompt',
  title: 'Text Prompt',
  category: 'Conditioning',
  description:
    'A prompt, optionally from one of the paper\'s style presets. Every "[prompt]" in the text is replaced by the subject, so one preset serves any picture.',
  inputs: {},
  outputs: { text: { type: 'Text', label: 'text' } },
  params: z.object({
    text: z
      .string()
      .max(4000)
      .default('a photo of [prompt]')
      .describe('The prompt. "[prompt]" is replaced by the subject.')
      .meta({ ui: { multiline: true, presets: PROMPT_PRESETS, tokens: true } }),
    subject: z.string().max(500).default('a house').describe('What the picture shows; fills "[prompt]".'),
  }),
  async run({ params }) {
    const text = substituteSubject(params.text, params.subject).trim();
    return { outputs: { text }, result: { text } };
  },
});

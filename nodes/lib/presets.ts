/** Style prompts of the seed paper (the eval's styles); `[prompt]` is replaced by the subject. */
export const STYLE_PRESETS = [
  {
    label: 'Minecraft',
    value:
      'A Minecraft-inspired rendering of [prompt], featuring distinct pixelated textures, blocky 3D cube structures, limited color palette with no gradients, ' +
      'sharp right angles and perfect squares, characteristic voxel-based terrain with visible block edges.',
  },
  {
    label: 'Van Gogh',
    value: 'A Van Gogh-style painting of [prompt], with bold, swirling brushstrokes, rich textures, and vibrant, expressive colors reminiscent of Starry Night',
  },
  {
    label: 'Mosaic',
    value: 'A highly detailed mosaic of [prompt], made of small, colorful tiles with visible grout lines, creating a textured and handcrafted appearance',
  },
  {
    label: 'Andy Warhol Pop',
    value:
      'A vibrant Andy Warhol-style pop art image of [prompt], featuring bold, contrasting colors, high saturation, thick outlines, and a repeated or silkscreen-like print effect.',
  },
] as const;

/**
 * The same styles said in fewer words, so that none is cut at the text encoder's 75 tokens (the paper's
 * run to 125 and 218 tokens with the demo model's byte tokenizer): what the templates use.
 */
export const SHORT_STYLE_PRESETS = [
  { label: 'Minecraft', value: '[prompt] in Minecraft style, blocky voxels, pixelated textures' },
  { label: 'Van Gogh', value: 'A Van Gogh painting of [prompt], swirling brushstrokes, vivid colors' },
  { label: 'Mosaic', value: 'A mosaic of [prompt], small colorful tiles, visible grout lines' },
  { label: 'Andy Warhol Pop', value: 'Andy Warhol pop art of [prompt], bold colors, thick outlines' },
] as const;

/** A Text Prompt's preset list: the short styles, then the paper's own words. */
export const PROMPT_PRESETS = [...SHORT_STYLE_PRESETS, ...STYLE_PRESETS.map((p) => ({ label: `${p.label} (paper)`, value: p.value }))];

/** Replace every `[prompt]` in a template with the subject. */
export function substituteSubject(template: string, subject: string): string {
  return template.replaceAll('[prompt]', subject);
}

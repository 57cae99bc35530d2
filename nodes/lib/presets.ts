/** Style prompts of the seed paper; `[prompt]` is replaced by the subject. */
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

/** Replace every `[prompt]` in a template with the subject. */
export function substituteSubject(template: string, subject: string): string {
  return template.replaceAll('[prompt]', subject);
}

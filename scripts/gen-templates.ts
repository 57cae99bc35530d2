/**
 * Writes the shipped templates in graphs/ (run from the project root: `npx tsx scripts/gen-templates.ts`).
 * One generator keeps the templates' shared part (model, image, source prompt, inversion, styles,
 * mask) identical across them and lays nodes out on one grid.
 */
import { writeFileSync } from 'node:fs';
import { encodePoints } from '../server/protocol/painting.ts';
import { SHORT_STYLE_PRESETS } from '../nodes/lib/presets.ts';
/** The templates' style prompts: the short presets (nodes/lib/presets.ts), none cut at 75 tokens. */
const short = (label: string) => SHORT_STYLE_PRESETS.find((p) => p.label === label)!.value;
const STYLE = { vanGogh: short('Van Gogh'), minecraft: short('Minecraft'), mosaic: short('Mosaic'), warhol: short('Andy Warhol Pop') };
const vanGogh = STYLE.vanGogh;
const minecraft = STYLE.minecraft;
/** A style: its prompt and the title its Text Prompt node shows. */
type Style = { text: string; title: string };
const TWO: Style[] = [
  { text: vanGogh, title: 'Style 1: Van Gogh (left)' },
  { text: minecraft, title: 'Style 2: Minecraft (right)' },
];
const THREE: Style[] = [
  { text: vanGogh, title: 'Style 1: Van Gogh (left)' },
  { text: STYLE.mosaic, title: 'Style 2: Mosaic (centre)' },
  { text: minecraft, title: 'Style 3: Minecraft (right)' },
];
type N = { id: string; type: string; params?: Record<string, unknown>; position: { x: number; y: number }; title?: string };
type E = { from: { node: string; output: string }; to: { node: string; input: string } };
const e = (a: string, o: string, b: string, i: string): E => ({ from: { node: a, output: o }, to: { node: b, input: i } });
const at = (col: number, row: number) => ({ x: 40 + col * 340, y: 40 + row * 300 });

function common(): { nodes: N[]; edges: E[] } {
  const nodes: N[] = [
    { id: 'model', type: 'LoadModel', params: { model: 'demo' }, position: at(0, 0) },
    { id: 'image', type: 'LoadImage', params: { image: 'builtin:sample', fit: 'crop', max_side: 512 }, position: at(0, 1) },
    { id: 'source', type: 'TextPrompt', title: 'Source prompt', params: { text: 'a photo of [prompt]', subject: 'a house' }, position: at(0, 2) },
    { id: 'encode_source', type: 'EncodeText', position: at(1, 2) },
    { id: 'vae_encode', type: 'VAEEncode', position: at(1, 1) },
    { id: 'invert', type: 'Invert', params: { steps: 100, skip: 10, eta: 0.1, guidance: 1, seed: 0 }, position: at(2, 1) },
  ];
  const edges = [
    // Load Image fits the picture to the sizes the model's UNet takes.
    e('model', 'model', 'image', 'model'),
    e('model', 'model', 'encode_source', 'model'),
    e('source', 'text', 'encode_source', 'text'),
    e('model', 'model', 'vae_encode', 'model'),
    e('image', 'image', 'vae_encode', 'image'),
    e('model', 'model', 'invert', 'model'),
    e('vae_encode', 'latent', 'invert', 'latent'),
    e('encode_source', 'conditioning', 'invert', 'source'),
  ];
  return { nodes, edges };
}
/** One Text Prompt and Encode Text per style: style1/encode_style1 … in rows row, row + 1, … */
function styles(nodes: N[], edges: E[], row: number, list: Style[] = TWO) {
  list.forEach(({ text, title }, i) => {
    const k = i + 1;
    nodes.push({ id: `style${k}`, type: 'TextPrompt', title, params: { text, subject: 'a house' }, position: at(0, row + i) });
  });
  list.forEach((_, i) => nodes.push({ id: `encode_style${i + 1}`, type: 'EncodeText', position: at(1, row + i) }));
  list.forEach((_, i) => edges.push(e('model', 'model', `encode_style${i + 1}`, 'model'), e(`style${i + 1}`, 'text', `encode_style${i + 1}`, 'text')));
}
/** The mask; the loaded picture shows under its regions in the preview. */
function mask(nodes: N[], edges: E[], row: number, params: Record<string, unknown> = { shape: 'logistic', direction: 'left-right', sharpness: 20 }) {
  nodes.push({ id: 'mask', type: 'Mask', params, position: at(1, row) });
  edges.push(e('image', 'image', 'mask', 'picture'));
}
function decodeSave(nodes: N[], edges: E[], from: string, id: string, col: number, row: number, prefix: string, title?: string) {
  nodes.push(
    { id: `decode_${id}`, type: 'VAEDecode', position: at(col, row) },
    { id: `save_${id}`, type: 'SaveImage', title, params: { prefix }, position: at(col + 1, row) },
  );
  edges.push(e('model', 'model', `decode_${id}`, 'model'), e(from, 'latent', `decode_${id}`, 'latent'), e(`decode_${id}`, 'image', `save_${id}`, 'image'));
}
/** A merge sampler of n styles, fed encode_style1..n in order (two styles: the paper's, `styles` left at its default). */
function mergeSampler(nodes: N[], edges: E[], id: string, type: string, guidance: number, row: number, n = 2) {
  nodes.push({ id, type, params: n === 2 ? { guidance } : { styles: n, guidance }, position: at(3, row) });
  edges.push(e('model', 'model', id, 'model'), e('invert', 'inversion', id, 'inversion'));
  for (let k = 1; k <= n; k++) edges.push(e(`encode_style${k}`, 'conditioning', id, `style${k}`));
  edges.push(e('mask', 'mask', id, 'mask'));
}
const epsSampler = (nodes: N[], edges: E[], row: number, n = 2) => mergeSampler(nodes, edges, 'eps_merge', 'EpsilonMergeSampler', 20, row, n);
const attnSampler = (nodes: N[], edges: E[], row: number, guidance = 20, n = 2) =>
  mergeSampler(nodes, edges, 'attn_merge', 'AttentionMergeSampler', guidance, row, n);
function single(nodes: N[], edges: E[], id: string, cond: string, row: number) {
  nodes.push({ id, type: 'SinglePromptSampler', params: { guidance: 20 }, position: at(3, row) });
  edges.push(e('model', 'model', id, 'model'), e('invert', 'inversion', id, 'inversion'), e(cond, 'conditioning', id, 'prompt'));
}
/** The single-prompt baseline: one prompt that states the spatial arrangement of the styles in words. */
const BOTH_STYLES = 'A painting of [prompt], Van Gogh style on the left and Minecraft style on the right';
const THREE_STYLES = 'A painting of [prompt]: Van Gogh left, mosaic centre, Minecraft right';
function bothStyles(nodes: N[], edges: E[], id: string, col: number, row: number, text = BOTH_STYLES, title = 'Both styles in one prompt') {
  nodes.push(
    { id, type: 'TextPrompt', title, params: { text, subject: 'a house' }, position: at(col, row) },
    { id: `encode_${id}`, type: 'EncodeText', position: at(col + 1, row) },
  );
  edges.push(e('model', 'model', `encode_${id}`, 'model'), e(id, 'text', `encode_${id}`, 'text'));
}
/**
 * Evaluation: a Load CLIP node, one Metrics node per method (its label names the method; the image
 * it scores comes from `from`, against the loaded original, with the source and style prompts) and
 * a Metrics Table that collects them in the seed's layout.
 */
function evaluation(nodes: N[], edges: E[], methods: [label: string, from: string, output: string][], col: number, n = 2) {
  nodes.push({ id: 'clip', type: 'LoadClip', title: 'Load CLIP (set a folder for CLIP scores)', params: { clip: '' }, position: at(col, 0) });
  methods.forEach(([label, from, output], i) => {
    const id = `metrics_${label}`;
    // Two styles: the seed's table (halves vs styles); any number: each style's region too, from the mask.
    nodes.push({
      id,
      type: 'Metrics',
      title: `Metrics: ${label}`,
      params: n === 2 ? { label, lpips: '' } : { styles: n, label, lpips: '' },
      position: at(col, i + 1),
    });
    edges.push(e(from, output, id, 'image'), e('image', 'image', id, 'original'), e('clip', 'clip', id, 'clip'), e('source', 'text', id, 'source'));
    for (let k = 1; k <= n; k++) edges.push(e(`style${k}`, 'text', id, `style${k}`));
    // The mask: each style's region scored against its style and the others (bleed), and the seam TV along the borders.
    edges.push(e('mask', 'mask', id, 'mask'));
    edges.push(e(id, 'metrics', 'metrics_table', `metrics${i + 1}`));
  });
  nodes.push({ id: 'metrics_table', type: 'MetricsTable', position: at(col + 1, 1) });
}
/** The house, the hills and the sky of the built-in sample picture as strokes: style 2 over the house, style 3 along the hills. */
function paintedRegions(): Record<string, unknown>[] {
  const stroke = (style: number, radius: number, xy: number[]) => ({ style, radius, points: encodePoints(xy) });
  return [
    stroke(2, 0.08, [0.25, 0.5, 0.39, 0.5, 0.39, 0.62, 0.25, 0.62, 0.25, 0.72, 0.39, 0.72]),
    stroke(3, 0.12, [0.0, 0.9, 0.2, 0.86, 0.45, 0.9, 0.7, 0.84, 1.0, 0.86]),
    stroke(3, 0.1, [0.55, 0.75, 0.8, 0.72, 1.0, 0.7]),
  ];
}
/**
 * What simple mode shows of a template (the graph JSON's `exposed`): what an artist changes — the picture,
 * the prompts (the source's subject too), the mask (painted: the painter; words: the words; else its
 * direction) and each sampler's guidance, the strength of its styles.
 */
function exposure(n: N): { exposed?: string[] } {
  const shape = n.params?.shape;
  const fields: Record<string, string[]> = {
    LoadImage: ['image'],
    TextPrompt: n.id === 'source' ? ['subject', 'text'] : ['text'],
    Mask: shape === 'painted' ? ['strokes'] : shape === 'words' ? ['words'] : ['direction'],
  };
  const exposed = fields[n.type] ?? (n.type.endsWith('Sampler') ? ['guidance'] : []);
  return exposed.length ? { exposed } : {};
}

function write(name: string, title: string, description: string, nodes: N[], edges: E[]) {
  const g = { format: 'dualstyle-graph', version: 1, meta: { title, description }, nodes: nodes.map((n) => ({ params: {}, ...n, ...exposure(n) })), edges };
  writeFileSync(`graphs/${name}.json`, JSON.stringify(g, null, 2) + '\n');
}

{
  const { nodes, edges } = common();
  styles(nodes, edges, 3);
  mask(nodes, edges, 5);
  epsSampler(nodes, edges, 3);
  decodeSave(nodes, edges, 'eps_merge', 'eps', 4, 3, 'epsilon-merge', 'Epsilon merge');
  write(
    'epsilon-merge',
    'Epsilon merge: Van Gogh left, Minecraft right',
    "The paper's noise-merging method: invert the picture with CycleDiffusion under the source prompt, then decode it with the two style " +
      'prompts, merging their guided noise predictions with a logistic mask (sharpness 20). Paper settings: 100 steps, skip 10, eta 0.1, encoder ' +
      'guidance 1, decoder guidance 20.',
    nodes,
    edges,
  );
}
{
  const { nodes, edges } = common();
  styles(nodes, edges, 3);
  mask(nodes, edges, 5);
  single(nodes, edges, 'single_style1', 'encode_style1', 3);
  single(nodes, edges, 'single_style2', 'encode_style2', 4);
  nodes.push(
    { id: 'decode_style1', type: 'VAEDecode', position: at(4, 3) },
    { id: 'decode_style2', type: 'VAEDecode', position: at(4, 4) },
    { id: 'pixel_merge', type: 'PixelMerge', position: at(5, 4) },
    { id: 'save_pixel', type: 'SaveImage', title: 'Pixel merge', params: { prefix: 'pixel-merge' }, position: at(6, 4) },
  );
  edges.push(
    e('model', 'model', 'decode_style1', 'model'),
    e('single_style1', 'latent', 'decode_style1', 'latent'),
    e('model', 'model', 'decode_style2', 'model'),
    e('single_style2', 'latent', 'decode_style2', 'latent'),
    e('decode_style1', 'image', 'pixel_merge', 'image1'),
    e('decode_style2', 'image', 'pixel_merge', 'image2'),
    e('mask', 'mask', 'pixel_merge', 'mask'),
    e('pixel_merge', 'image', 'save_pixel', 'image'),
  );
  write(
    'pixel-merge',
    'Pixel merge baseline',
    'Baseline of the paper: decode the inversion once per style, then blend the two pictures pixel by pixel with the mask.',
    nodes,
    edges,
  );
}
{
  const { nodes, edges } = common();
  bothStyles(nodes, edges, 'style', 0, 3);
  single(nodes, edges, 'single', 'encode_style', 3);
  decodeSave(nodes, edges, 'single', 'single', 4, 3, 'single-prompt', 'Single prompt');
  write(
    'single-prompt',
    'Single prompt baseline',
    'Baseline of the paper: one prompt that asks for the spatial arrangement of both styles in words. The paper found it fails: one style ' +
      'dominates or the styles mix incoherently.',
    nodes,
    edges,
  );
}
{
  const { nodes, edges } = common();
  styles(nodes, edges, 3);
  mask(nodes, edges, 5, { shape: 'logistic', direction: 'left-right', sharpness: 70 });
  attnSampler(nodes, edges, 3, 30);
  decodeSave(nodes, edges, 'attn_merge', 'attn', 4, 3, 'attention-merge', 'Attention merge');
  write(
    'attention-merge',
    'Attention merge: Van Gogh left, Minecraft right',
    "The paper's cross-attention method: invert the picture with CycleDiffusion, then decode it with a UNet whose every cross-attention layer " +
      'attends to both style prompts and blends them with the mask. The paper found this method needs a sharper mask and stronger guidance than ' +
      "epsilon merge: sharpness 70, decoder guidance 30 (its defaults are 20 and 20). The first run rewrites the model's UNet once; later runs " +
      'reuse it.',
    nodes,
    edges,
  );
}
{
  const { nodes, edges } = common();
  styles(nodes, edges, 3);
  mask(nodes, edges, 5);
  epsSampler(nodes, edges, 2);
  decodeSave(nodes, edges, 'eps_merge', 'eps', 4, 2, 'compare-epsilon', 'Epsilon merge');
  attnSampler(nodes, edges, 1);
  decodeSave(nodes, edges, 'attn_merge', 'attn', 4, 1, 'compare-attention', 'Attention merge');
  single(nodes, edges, 'single_style1', 'encode_style1', 3);
  single(nodes, edges, 'single_style2', 'encode_style2', 4);
  decodeSave(nodes, edges, 'single_style1', 'style1', 4, 3, 'compare-style1', 'Style 1 only');
  decodeSave(nodes, edges, 'single_style2', 'style2', 4, 4, 'compare-style2', 'Style 2 only');
  nodes.push(
    { id: 'pixel_merge', type: 'PixelMerge', position: at(5, 5) },
    { id: 'save_pixel', type: 'SaveImage', title: 'Pixel merge', params: { prefix: 'compare-pixel' }, position: at(6, 5) },
  );
  edges.push(
    e('decode_style1', 'image', 'pixel_merge', 'image1'),
    e('decode_style2', 'image', 'pixel_merge', 'image2'),
    e('mask', 'mask', 'pixel_merge', 'mask'),
    e('pixel_merge', 'image', 'save_pixel', 'image'),
  );
  bothStyles(nodes, edges, 'style_both', 0, 6);
  single(nodes, edges, 'single_both', 'encode_style_both', 6);
  decodeSave(nodes, edges, 'single_both', 'single', 4, 6, 'compare-single', 'Single prompt');
  // The seed's columns (cross-attention, epsilon, pixel, two styles in one prompt), then each style alone.
  evaluation(
    nodes,
    edges,
    [
      ['attention', 'decode_attn', 'image'],
      ['epsilon', 'decode_eps', 'image'],
      ['pixel', 'pixel_merge', 'image'],
      ['single', 'decode_single', 'image'],
      ['style1', 'decode_style1', 'image'],
      ['style2', 'decode_style2', 'image'],
    ],
    7,
  );
  write(
    'comparison',
    'Compare methods on one inversion',
    'One CycleDiffusion inversion shared by every method: epsilon merge, attention merge, each style alone, the pixel merge of the two and the ' +
      'single-prompt baseline, all with the same mask and guidance, each scored by a Metrics node (L2, PSNR, SSIM, smoothness, seam TV; CLIP and ' +
      "directional CLIP once Load CLIP has a folder) and collected in a Metrics Table, the seed's layout. Change a style prompt and only its " +
      'decoders re-run; the inversion comes from cache. `npm run eval` runs this graph over a folder of images.',
    nodes,
    edges,
  );
}

{
  const { nodes, edges } = common();
  styles(nodes, edges, 3, THREE);
  mask(nodes, edges, 6, { styles: 3, shape: 'logistic', direction: 'left-right', sharpness: 20 });
  epsSampler(nodes, edges, 3, 3);
  decodeSave(nodes, edges, 'eps_merge', 'eps', 4, 3, 'three-styles', 'Three styles');
  write(
    'three-styles',
    'Three styles: Van Gogh left, mosaic centre, Minecraft right',
    "The seed's noise merging with three styles: one inversion, decoded with three style prompts whose guided noise predictions are blended by " +
      'a mask of three regions of equal width with soft logistic borders (sharpness 20). All three prompts go through the UNet in one call per ' +
      "step (∅ and the three styles). Set the Mask's direction to an angle or radial, or paint the regions by hand; add a style with the " +
      'sampler\'s "+ style" (and the Mask\'s styles).',
    nodes,
    edges,
  );
}
{
  const { nodes, edges } = common();
  styles(nodes, edges, 3, [
    { text: vanGogh, title: 'Style 1: Van Gogh (sky, everything unpainted)' },
    { text: STYLE.warhol, title: 'Style 2: Andy Warhol (painted on the house)' },
    { text: minecraft, title: 'Style 3: Minecraft (painted on the hills)' },
  ]);
  mask(nodes, edges, 6, { styles: 3, shape: 'painted', fill: 1, feather: 0.03, strokes: paintedRegions() });
  epsSampler(nodes, edges, 3, 3);
  decodeSave(nodes, edges, 'eps_merge', 'eps', 4, 3, 'painted-mask', 'Painted regions');
  write(
    'painted-mask',
    'Painted regions: Andy Warhol on the house, Minecraft on the hills, Van Gogh elsewhere',
    "Regions painted by hand on the Mask node (brush, eraser and feather, one colour per style): the house in Andy Warhol's pop art, the hills " +
      "in Minecraft, everything unpainted in Van Gogh's style, with soft borders (feather 0.03). Epsilon merge blends the three guided noise " +
      'predictions with the painted weights at every step.',
    nodes,
    edges,
  );
}
{
  const { nodes, edges } = common();
  styles(nodes, edges, 3, THREE);
  mask(nodes, edges, 6, { styles: 3, shape: 'logistic', direction: 'left-right', sharpness: 20 });
  epsSampler(nodes, edges, 2, 3);
  decodeSave(nodes, edges, 'eps_merge', 'eps', 4, 2, 'compare3-epsilon', 'Epsilon merge');
  attnSampler(nodes, edges, 1, 20, 3);
  decodeSave(nodes, edges, 'attn_merge', 'attn', 4, 1, 'compare3-attention', 'Attention merge');
  for (const k of [1, 2, 3]) {
    single(nodes, edges, `single_style${k}`, `encode_style${k}`, 2 + k);
    decodeSave(nodes, edges, `single_style${k}`, `style${k}`, 4, 2 + k, `compare3-style${k}`, `Style ${k} only`);
  }
  nodes.push(
    { id: 'pixel_merge', type: 'PixelMerge', params: { styles: 3 }, position: at(5, 6) },
    { id: 'save_pixel', type: 'SaveImage', title: 'Pixel merge', params: { prefix: 'compare3-pixel' }, position: at(6, 6) },
  );
  edges.push(
    e('decode_style1', 'image', 'pixel_merge', 'image1'),
    e('decode_style2', 'image', 'pixel_merge', 'image2'),
    e('decode_style3', 'image', 'pixel_merge', 'image3'),
    e('mask', 'mask', 'pixel_merge', 'mask'),
    e('pixel_merge', 'image', 'save_pixel', 'image'),
  );
  bothStyles(nodes, edges, 'style_all', 0, 7, THREE_STYLES, 'All three styles in one prompt');
  single(nodes, edges, 'single_all', 'encode_style_all', 7);
  decodeSave(nodes, edges, 'single_all', 'single', 4, 7, 'compare3-single', 'Single prompt');
  evaluation(
    nodes,
    edges,
    [
      ['attention', 'decode_attn', 'image'],
      ['epsilon', 'decode_eps', 'image'],
      ['pixel', 'pixel_merge', 'image'],
      ['single', 'decode_single', 'image'],
      ['style1', 'decode_style1', 'image'],
      ['style2', 'decode_style2', 'image'],
      ['style3', 'decode_style3', 'image'],
    ],
    7,
    3,
  );
  write(
    'comparison-three-styles',
    'Compare methods with three styles',
    'The comparison for three styles (Van Gogh left, mosaic centre, Minecraft right) on one inversion: epsilon merge, attention merge, each ' +
      'style alone, their pixel merge and the single prompt that asks for all three in words, each scored by a Metrics node that, with a CLIP ' +
      "folder, also scores every style's own region (where the mask weighs it most) against that style (CLIP reg. 1..3).",
    nodes,
    edges,
  );
}
{
  const { nodes, edges } = common();
  styles(nodes, edges, 3);
  mask(nodes, edges, 6);
  nodes.push(
    {
      id: 'negative',
      type: 'TextPrompt',
      title: 'Negative prompt of region 1',
      params: { text: 'blurry, washed out, low detail', subject: 'a house' },
      position: at(0, 5),
    },
    { id: 'encode_negative', type: 'EncodeText', position: at(1, 5) },
  );
  edges.push(e('model', 'model', 'encode_negative', 'model'), e('negative', 'text', 'encode_negative', 'text'));
  nodes.push(
    { id: 'region1', type: 'Region', title: 'Region 1: its own negative, styled from 30% of the decode', params: { start: 0.3 }, position: at(2, 3) },
    { id: 'region2', type: 'Region', title: 'Region 2: stronger guidance (30)', params: { guidance: 30 }, position: at(2, 4) },
  );
  edges.push(
    e('encode_style1', 'conditioning', 'region1', 'prompt'),
    e('encode_negative', 'conditioning', 'region1', 'negative'),
    e('encode_style2', 'conditioning', 'region2', 'prompt'),
  );
  nodes.push({ id: 'eps_merge', type: 'EpsilonMergeSampler', params: { guidance: 20, baseRatio: 0.2 }, position: at(3, 3) });
  edges.push(
    e('model', 'model', 'eps_merge', 'model'),
    e('invert', 'inversion', 'eps_merge', 'inversion'),
    e('region1', 'conditioning', 'eps_merge', 'style1'),
    e('region2', 'conditioning', 'eps_merge', 'style2'),
    e('mask', 'mask', 'eps_merge', 'mask'),
    e('encode_source', 'conditioning', 'eps_merge', 'base'),
  );
  decodeSave(nodes, edges, 'eps_merge', 'eps', 4, 3, 'regional', 'Regional controls');
  write(
    'regional-controls',
    'Regional controls: a base prompt, per-region negative, guidance and step window',
    'Epsilon merge with the controls of regional prompting: the source prompt as a base shared by both regions (ratio 0.2: ' +
      'ê = 0.2·ê(base) + 0.8·Σ M_k·ê_k), region 1 (Van Gogh) with its own negative prompt that starts its style at 30% of the decode (it follows ' +
      "the source prompt before, keeping the picture's structure), region 2 (Minecraft) with stronger guidance. Every prompt goes through the UNet " +
      'in the one call of each step.',
    nodes,
    edges,
  );
}
{
  const { nodes, edges } = common();
  // The inversion records where the UNet attends to each word of the source prompt ("a photo of a house").
  const invert = nodes.find((n) => n.id === 'invert')!;
  invert.params = { ...invert.params, attentionMaps: true };
  styles(nodes, edges, 3);
  mask(nodes, edges, 5, { shape: 'words', words: 'house', sharpness: 20, fill: 2, feather: 0.03 });
  edges.push(e('invert', 'inversion', 'mask', 'inversion'));
  epsSampler(nodes, edges, 3);
  decodeSave(nodes, edges, 'eps_merge', 'eps', 4, 3, 'words-mask', 'Words mask');
  write(
    'words-mask',
    "Words mask: the house in Van Gogh's style, the rest in Minecraft",
    "The mask comes from the picture's own words: the inversion records where the UNet attends to each word of the source prompt " +
      '("a photo of a house"), and the Mask node (shape "words") gives "house" to style 1 and the rest of the picture to style 2, ' +
      'w_house = σ(κ·(2·s − 1)) with s the normalised attention to "house". Paint on the mask to correct it.',
    nodes,
    edges,
  );
}

/**
 * What an evaluation runs over: a folder of images with a JSON of their source prompts (CycleDiffusion's
 * `translate_text.json` format: [{ "img_path", "encode_text" }], or { "<file>": "<prompt>" }), and the
 * style pairs (preset names such as `van-gogh/minecraft`, or a JSON file of custom pairs).
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { STYLE_PRESETS } from '../../nodes/lib/presets.ts';

export interface EvalImage {
  /** A short unique name (the file name without extension). */
  name: string;
  file: string;
  source: string;
  /** What fills "[prompt]" in the style templates. */
  subject: string;
}

export interface StylePair {
  /** e.g. "van-gogh/minecraft". */
  name: string;
  /** Left style (M = 1), a template with "[prompt]". */
  style1: string;
  /** Right style. */
  style2: string;
  /** The single-prompt baseline: both styles and their places in one prompt. */
  single: string;
}

export class DatasetError extends Error {
  override name = 'DatasetError';
}

const PROMPT_FILES = ['translate_text.json', 'translate-text.json', 'prompts.json'];

/**
 * The subject of a source prompt: an explicit one, else the prompt without a leading "a photo of" (or
 * picture, image, painting, drawing, rendering) and a trailing full stop: "a photo of a cat" → "a cat".
 */
export function subjectOf(source: string): string {
  return source
    .trim()
    .replace(/^(an?\s+)?(photo|picture|image|painting|drawing|rendering|render)\s+of\s+/i, '')
    .replace(/[.\s]+$/, '');
}

type Entry = { img_path?: unknown; image?: unknown; file?: unknown; encode_text?: unknown; source?: unknown; prompt?: unknown; subject?: unknown };

export async function readDataset(dir: string): Promise<{ images: EvalImage[]; notes: string[] }> {
  if (!existsSync(dir)) throw new DatasetError(`--images: folder not found: ${dir}`);
  const jsons = (await readdir(dir)).filter((f) => f.endsWith('.json'));
  const file = PROMPT_FILES.find((f) => jsons.includes(f)) ?? (jsons.length === 1 ? jsons[0] : undefined);
  if (!file) {
    throw new DatasetError(
      `--images: ${dir} needs a JSON of source prompts (${PROMPT_FILES.join(', ')}, or a single .json): ` +
        '[{ "img_path": "cat.png", "encode_text": "a photo of a cat" }] or { "cat.png": "a photo of a cat" }' +
        (jsons.length > 1 ? `; found several: ${jsons.join(', ')}` : ''),
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path.join(dir, file), 'utf8'));
  } catch (e) {
    throw new DatasetError(`${path.join(dir, file)} is not valid JSON: ${(e as Error).message}`);
  }
  const entries: Entry[] = Array.isArray(json)
    ? (json as Entry[])
    : json && typeof json === 'object'
      ? Object.entries(json as Record<string, unknown>).map(([img, source]) => ({ img_path: img, encode_text: source }))
      : [];
  const images: EvalImage[] = [];
  const notes: string[] = [];
  const missing: string[] = [];
  const seen = new Map<string, EvalImage>();
  for (const [i, e] of entries.entries()) {
    const img = e.img_path ?? e.image ?? e.file;
    const source = e.encode_text ?? e.source ?? e.prompt;
    if (typeof img !== 'string' || typeof source !== 'string' || !source.trim()) {
      throw new DatasetError(`${file}, entry ${i}: needs "img_path" and "encode_text" strings (the image and its source prompt)`);
    }
    // CycleDiffusion's paths are relative to its repository; try the folder itself, then the file name in it.
    const candidates = [path.resolve(dir, img), path.join(dir, path.basename(img))];
    const found = candidates.find((c) => existsSync(c));
    if (!found) {
      missing.push(img);
      continue;
    }
    const earlier = seen.get(found);
    if (earlier) {
      if (earlier.source !== source.trim())
        notes.push(`${img}: listed again with another source prompt; the first (${JSON.stringify(earlier.source)}) is used`);
      continue;
    }
    let name = path
      .basename(found)
      .replace(/\.[^.]+$/, '')
      .replace(/[^A-Za-z0-9_-]+/g, '_');
    while (images.some((x) => x.name === name)) name += '_';
    const item: EvalImage = { name, file: found, source: source.trim(), subject: typeof e.subject === 'string' ? e.subject : subjectOf(source) };
    seen.set(found, item);
    images.push(item);
  }
  if (missing.length > 0) throw new DatasetError(`${file} lists images that are not in ${dir}: ${missing.join(', ')}`);
  if (images.length === 0) throw new DatasetError(`${path.join(dir, file)} lists no images`);
  return { images, notes };
}

const key = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, '');

function preset(query: string): { label: string; value: string } {
  const hits = STYLE_PRESETS.filter((p) => key(p.label).includes(key(query)));
  if (hits.length !== 1 || !key(query)) {
    throw new DatasetError(
      `--styles: "${query}" ${hits.length > 1 ? 'matches several styles' : 'is not a style'}; the styles are ${STYLE_PRESETS.map((p) => key(p.label)).join(', ')} (or give a JSON file of pairs)`,
    );
  }
  return hits[0]!;
}

/** "A painting of [prompt], Van Gogh style on the left and Minecraft style on the right". */
export function singlePrompt(left: string, right: string): string {
  return `A painting of [prompt], ${left} style on the left and ${right} style on the right`;
}

/**
 * `van-gogh/minecraft,mosaic/warhol` (left/right, separated by "/" or ":"), or a JSON file:
 * [{ "name"?, "style1": "... [prompt] ...", "style2": "...", "single"?: "..." }].
 */
export async function readStylePairs(spec: string): Promise<StylePair[]> {
  if (spec.endsWith('.json')) {
    let list: unknown;
    try {
      list = JSON.parse(await readFile(spec, 'utf8'));
    } catch (e) {
      throw new DatasetError(`--styles: cannot read ${spec}: ${(e as Error).message}`);
    }
    if (!Array.isArray(list) || list.length === 0) throw new DatasetError(`--styles: ${spec} must be a list of { "style1", "style2" }`);
    return list.map((p: { name?: unknown; style1?: unknown; style2?: unknown; single?: unknown }, i) => {
      if (typeof p.style1 !== 'string' || typeof p.style2 !== 'string')
        throw new DatasetError(`--styles: ${spec}, pair ${i}: "style1" and "style2" must be strings`);
      return {
        name: typeof p.name === 'string' ? p.name : `pair${i + 1}`,
        style1: p.style1,
        style2: p.style2,
        single: typeof p.single === 'string' ? p.single : singlePrompt('the first', 'the second'),
      };
    });
  }
  const pairs = spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (pairs.length === 0) throw new DatasetError('--styles: no style pair given (e.g. van-gogh/minecraft)');
  return pairs.map((pair) => {
    const parts = pair.split(/[/:]/).map((s) => s.trim());
    if (parts.length !== 2) throw new DatasetError(`--styles: "${pair}" is not a pair LEFT/RIGHT (e.g. van-gogh/minecraft)`);
    const [a, b] = parts.map(preset) as [{ label: string; value: string }, { label: string; value: string }];
    return { name: `${key(a.label)}/${key(b.label)}`, style1: a.value, style2: b.value, single: singlePrompt(a.label, b.label) };
  });
}

/**
 * Textual-inversion embedding files, as a ComfyUI user keeps them: `<models folder>/embeddings/NAME.safetensors`,
 * used in a prompt as `embedding:NAME`. The keys of the common writers are read: A1111's `emb_params` (and
 * `string_to_param.*`), and diffusers' one tensor named after its token (`<cat-toy>`); a value is one vector
 * [width] or several [n, width]. Files for other text encoders (SD 2.x's 1024 wide, SDXL's clip_g/clip_l)
 * are refused with the file named, before anything runs.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../engine/errors.ts';
import type { TokenEmbedding } from '../engine/sd/added-embeddings.ts';
import { embeddingNames } from '../engine/text/added-tokens.ts';
import { SafetensorsFile } from './convert/safetensors.ts';
import { isInside } from './model-roots.ts';

/** CLIP reads 75 tokens of a prompt: an embedding longer than that could never fit. */
const MAX_VECTORS = 75;
const WHERE = "the embeddings/ folder of the models folders (<data>/models/embeddings, the studio's models/embeddings, or <models-root>/embeddings)";

/** The tensor holding the vectors, by the key conventions above; a refusal names what the file holds instead. */
function vectorsKey(f: SafetensorsFile): string {
  const keys = f.keys();
  const fail = (problem: string): never => {
    throw new UserError(`embedding ${path.basename(f.file)}: ${problem}`, 'text');
  };
  if (keys.includes('clip_g') || keys.includes('clip_l')) fail('an SDXL embedding (clip_g/clip_l); this studio runs SD 1.x models');
  if (keys.includes('emb_params')) return 'emb_params';
  const params = keys.filter((k) => k.startsWith('string_to_param.'));
  if (params.length === 1) return params[0]!;
  if (keys.length === 1) return keys[0]!;
  return fail(
    `holds ${keys.length} tensors (${keys.slice(0, 5).join(', ')}${keys.length > 5 ? ', …' : ''}); an embedding holds one: emb_params, string_to_param.*, or its token's name`,
  );
}

/** Reads one embedding file for a text encoder `width` wide. */
export function readEmbeddingFile(file: string, name: string, width: number, key: string): TokenEmbedding {
  const f = SafetensorsFile.open(file);
  try {
    const tensor = vectorsKey(f);
    const shape = f.info(tensor).shape.filter((d, i, all) => !(all.length === 3 && i === 0 && d === 1));
    const problem = (text: string) => new UserError(`embedding ${path.basename(file)}: ${text}`, 'text');
    if (shape.length !== 1 && shape.length !== 2) throw problem(`"${tensor}" has shape [${shape.join(', ')}]; an embedding is [width] or [vectors, width]`);
    const [count, w] = shape.length === 1 ? [1, shape[0]!] : [shape[0]!, shape[1]!];
    if (w !== width) {
      const hint = w === 1024 ? ' (an SD 2.x embedding?)' : w === 1280 ? ' (an SDXL embedding?)' : '';
      throw problem(`vectors of width ${w}${hint}; this model's text encoder takes ${width}`);
    }
    if (count < 1 || count > MAX_VECTORS) throw problem(`${count} vectors; an embedding has 1 to ${MAX_VECTORS}`);
    return { name, vectors: f.readFloat32(tensor), count, key };
  } finally {
    f.close();
  }
}

/** `<root>/embeddings/NAME.safetensors` in the first models folder that has it; a pickle beside it is refused, not read. */
async function findEmbeddingFile(name: string, roots: readonly string[]): Promise<string> {
  for (const root of roots) {
    const dir = path.join(root, 'embeddings');
    const file = path.join(dir, `${name}.safetensors`);
    if (!isInside(file, dir)) continue;
    if (
      await stat(file).then(
        (s) => s.isFile(),
        () => false,
      )
    )
      return file;
    for (const ext of ['.pt', '.bin']) {
      if (
        await stat(path.join(dir, name + ext)).then(
          (s) => s.isFile(),
          () => false,
        )
      ) {
        throw new UserError(
          `embedding ${name}${ext}: only .safetensors embeddings are read; convert it to ${name}.safetensors (most embedding pages offer one)`,
          'text',
        );
      }
    }
  }
  throw new UserError(`no embedding "${name}": put ${name}.safetensors in ${WHERE}`, 'text');
}

/** The embeddings a prompt names (`embedding:NAME`), read from the models folders for a text encoder `width` wide. */
export async function loadPromptEmbeddings(prompt: string, roots: readonly string[], width: number): Promise<TokenEmbedding[]> {
  const out: TokenEmbedding[] = [];
  for (const name of embeddingNames(prompt)) {
    const file = await findEmbeddingFile(name, roots);
    const key = createHash('sha256')
      .update(await readFile(file))
      .digest('hex')
      .slice(0, 16);
    out.push(readEmbeddingFile(file, name, width, key));
  }
  return out;
}

/**
 * What the embeddings folders hold (names, sizes, modification times): Encode Text's cache identity, so a
 * prompt's encoding is made again when an embedding file is added, replaced or removed.
 */
export async function embeddingsFingerprint(roots: readonly string[]): Promise<string> {
  const hash = createHash('sha256');
  for (const root of roots) {
    const dir = path.join(root, 'embeddings');
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names.sort()) {
      const s = await stat(path.join(dir, name)).catch(() => null);
      if (s?.isFile()) hash.update(`${dir}\0${name}\0${s.size}\0${s.mtimeMs}\n`);
    }
  }
  return hash.digest('hex').slice(0, 16);
}

/**
 * Step 2 of scripts/metrics-reference.py: CLIP embeddings of the Pillow pixel values it wrote
 * (<name>_pv.npy, [3, 3, 224, 224]: full, left, right) and of its prompts, with onnxruntime.
 *   npx tsx scripts/metrics-reference-embed.ts <work-dir> <clip-dir>
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { encodeNpy, readNpyFloat32 } from '../server/conformance/npy.ts';
import { ClipModel } from '../server/engine/evaluation-models/clip-model.ts';

const [work, clipDir] = process.argv.slice(2) as [string, string];
const clip = await ClipModel.load(clipDir, 'cpu');
for (const f of (await readdir(work)).filter((f) => f.endsWith('_pv.npy'))) {
  const pv = await readNpyFloat32(path.join(work, f));
  const n = 3 * 224 * 224;
  const embeds = await clip.embedPixels([0, 1, 2].map((i) => pv.data.slice(i * n, (i + 1) * n)));
  const flat = new Float32Array(embeds.length * embeds[0]!.length);
  embeds.forEach((e, i) => flat.set(e, i * e.length));
  await writeFile(path.join(work, f.replace('_pv.npy', '_embeds.npy')), encodeNpy(flat, [3, embeds[0]!.length]));
}
const prompts = JSON.parse(await readFile(path.join(work, 'prompts.json'), 'utf8')) as Record<string, string>;
for (const [key, prompt] of [
  ['source', prompts.source],
  ['style1', prompts.style1_left],
  ['style2', prompts.style2_right],
] as const) {
  const e = await clip.textEmbedding(prompt!);
  await writeFile(path.join(work, `text_${key}.npy`), encodeNpy(e, [e.length]));
}
await clip.release();

/**
 * Uploaded images: decoded with sharp under a pixel limit, normalised to PNG and stored under a
 * content address (`<sha256 of the PNG, first 32 hex digits>.png`: 128 bits, and short enough for the
 * 64-character name rule that nodes apply), so the same picture uploaded twice is one file and a
 * graph that names an upload always means the same pixels.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import sharp from 'sharp';
import { writeFileAtomic } from '../util/atomic.ts';
import { StoreError } from './errors.ts';
import { MAX_FILE_NAME_LENGTH, isSafeName, resolveInside, uploadsDir } from './paths.ts';

export const SUPPORTED_IMAGE_MESSAGE = 'not a supported image (png, jpeg, webp)';
const SUPPORTED_FORMATS = new Set(['png', 'jpeg', 'webp']);

export interface StoredUpload {
  name: string;
  width: number;
  height: number;
}

export async function storeUpload(dataDir: string, bytes: Uint8Array, maxPixels: number): Promise<StoredUpload> {
  if (bytes.length === 0) throw new StoreError('unsupported_image', `${SUPPORTED_IMAGE_MESSAGE}: the body is empty`);
  let meta: sharp.Metadata;
  try {
    // Reading the header only: cheap, and tells the size before any pixel is decoded.
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch {
    throw new StoreError('unsupported_image', SUPPORTED_IMAGE_MESSAGE);
  }
  if (!meta.format || !SUPPORTED_FORMATS.has(meta.format)) {
    throw new StoreError('unsupported_image', `${SUPPORTED_IMAGE_MESSAGE}, got ${meta.format ?? 'unknown data'}`);
  }
  const width = meta.autoOrient?.width ?? meta.width ?? 0;
  const height = meta.autoOrient?.height ?? meta.height ?? 0;
  if (width * height > maxPixels) {
    throw new StoreError(
      'image_too_large',
      `image too large: ${width}×${height} = ${width * height} pixels exceeds the limit of ${maxPixels} pixels`,
    );
  }
  let png: { data: Buffer; info: sharp.OutputInfo };
  try {
    png = await sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error', sequentialRead: true })
      .rotate() // honour EXIF orientation, so what the user saw is what the nodes get
      .png()
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new StoreError('unsupported_image', `${SUPPORTED_IMAGE_MESSAGE}: ${(err as Error).message}`);
  }
  const name = createHash('sha256').update(png.data).digest('hex').slice(0, 32) + '.png';
  const file = resolveInside(uploadsDir(dataDir), name);
  try {
    await fs.access(file);
  } catch {
    await writeFileAtomic(file, png.data);
  }
  return { name, width: png.info.width, height: png.info.height };
}

/** The path of a stored file (upload or result) by name, or a not_found / invalid_name error. */
export async function findStoredFile(dir: string, name: string, what: string): Promise<string> {
  if (!isSafeName(name, MAX_FILE_NAME_LENGTH)) {
    throw new StoreError('invalid_name', `invalid ${what} name: use 1–128 letters, digits, "_", "-" or "." (no leading dot, no "..")`);
  }
  const file = resolveInside(dir, name);
  try {
    const stat = await fs.stat(file);
    if (stat.isFile()) return file;
  } catch {
    /* fall through to not found */
  }
  throw new StoreError('not_found', `no ${what} named "${name}"`);
}

/** The bytes of an upload by name; null when there is none. An unsafe name is refused, never resolved. */
export async function readUpload(dataDir: string, name: string): Promise<Buffer | null> {
  if (!isSafeName(name, MAX_FILE_NAME_LENGTH)) throw new StoreError('invalid_name', `invalid image name ${JSON.stringify(name)}`);
  try {
    return await fs.readFile(resolveInside(uploadsDir(dataDir), name));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'EISDIR') return null;
    throw err;
  }
}

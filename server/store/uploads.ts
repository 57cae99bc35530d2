/**
 * Uploaded images: decoded with sharp under a pixel limit, normalised to PNG and stored under a
 * content address (`<sha256 of the PNG, first 32 hex digits>.png`: 128 bits, and short enough for the
 * 64-character name rule that nodes apply), so the same picture uploaded twice is one file and a
 * graph that names an upload always means the same pixels.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { writeFileAtomic } from '../util/atomic.ts';
import { formatBytes } from '../util/bytes.ts';
import { noSpaceError, StoreError } from './errors.ts';
import { MAX_FILE_NAME_LENGTH, isSafeName, resolveInside, uploadsDir } from './paths.ts';

export const SUPPORTED_IMAGE_MESSAGE = 'not a supported image (png, jpeg, webp)';
const SUPPORTED_FORMATS = new Set(['png', 'jpeg', 'webp']);

export interface StoredUpload {
  name: string;
  width: number;
  height: number;
}

/**
 * How much the uploads folder may hold in all. The size in use is read from the folder once, then kept
 * up to date; before refusing, the folder is read again (the user may have deleted files by hand).
 */
export class UploadQuota {
  private used: number | null = null;

  constructor(
    readonly dir: string,
    readonly maxTotalBytes: number,
  ) {}

  /** Reserves room for a new file of `bytes`, or throws quota_exceeded; `release` undoes it. */
  async reserve(bytes: number): Promise<{ release(): void }> {
    if (this.used === null || this.used + bytes > this.maxTotalBytes) this.used = await folderBytes(this.dir);
    if (this.used + bytes > this.maxTotalBytes) {
      throw new StoreError(
        'quota_exceeded',
        `the uploads folder is full: it may hold ${formatBytes(this.maxTotalBytes)} and holds ${formatBytes(this.used)}; ` +
          `this image needs ${formatBytes(bytes)} more (remove old uploads from ${path.basename(path.dirname(this.dir))}/uploads, or raise the limit)`,
      );
    }
    this.used += bytes;
    let released = false;
    return {
      release: () => {
        if (!released && this.used !== null) this.used -= bytes;
        released = true;
      },
    };
  }
}

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    try {
      const stat = await fs.stat(path.join(dir, name));
      if (stat.isFile()) total += stat.size;
    } catch {
      /* gone meanwhile */
    }
  }
  return total;
}

export async function storeUpload(dataDir: string, bytes: Uint8Array, maxPixels: number, quota?: UploadQuota): Promise<StoredUpload> {
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
    throw new StoreError('image_too_large', `image too large: ${width}×${height} = ${width * height} pixels exceeds the limit of ${maxPixels} pixels`);
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
    // Only a new picture takes room: the same one uploaded again is the same file.
    const room = await quota?.reserve(png.data.length);
    try {
      await writeFileAtomic(file, png.data);
    } catch (err) {
      room?.release();
      throw noSpaceError(err, 'the uploaded image');
    }
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

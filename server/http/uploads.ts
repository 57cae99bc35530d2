/**
 * Image uploads (raw image bodies) and the files nodes write: serving uploads and results by name.
 * Uploads are named by content; the name the user's file had travels in X-File-Name and is kept
 * beside the upload (`<name>.json`), so the editor shows "holiday.jpg", not a hash, after a reload.
 */
import { promises as fs } from 'node:fs';
import express, { Router, type Response } from 'express';
import sharp from 'sharp';
import { encodePng } from '../engine/images/pixels.ts';
import { sampleImage } from '../engine/images/sample.ts';
import { findStoredFile, storeUpload, SUPPORTED_IMAGE_MESSAGE, UploadQuota } from '../store/uploads.ts';
import { resolveInside, resultsDir, uploadsDir } from '../store/paths.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { param } from './body.ts';
import { ApiError } from './errors.ts';

export interface UploadLimits {
  uploadBytes: number;
  uploadPixels: number;
  /** What the uploads folder may hold in all (507 beyond it). */
  uploadsTotalBytes: number;
}

/** What GET /api/uploads/:name/info answers (and POST /api/uploads, with the same fields). */
export interface UploadInfo {
  name: string;
  width: number;
  height: number;
  url: string;
  /** The file name the user uploaded, when the client sent it. */
  fileName?: string;
}

/** The built-in pictures nodes accept by name ("builtin:sample"), as thumbnails the editor can show. */
const BUILTIN_THUMBNAILS: Record<string, { width: number; height: number; draw: (w: number, h: number) => ReturnType<typeof sampleImage> }> = {
  sample: { width: 256, height: 192, draw: sampleImage },
};

// eslint-disable-next-line no-control-regex -- control characters are what sentFileName strips
const CONTROL_CHARS = /[\u0000-\u001f]/g;

/** A file name as sent in X-File-Name (URI-encoded), trimmed to its last path part and 200 characters. */
function sentFileName(header: string | string[] | undefined): string | undefined {
  if (typeof header !== 'string' || header === '') return undefined;
  let name: string;
  try {
    name = decodeURIComponent(header);
  } catch {
    return undefined;
  }
  name = name.split(/[\\/]/).pop()!.replace(CONTROL_CHARS, '').trim().slice(0, 200);
  return name || undefined;
}

export function uploadRoutes(dataDir: string, limits: UploadLimits): Router {
  const router = Router();
  const quota = new UploadQuota(uploadsDir(dataDir), limits.uploadsTotalBytes);
  const sidecar = (name: string) => resolveInside(uploadsDir(dataDir), `${name}.json`);

  router.post('/uploads', express.raw({ type: 'image/*', limit: limits.uploadBytes }), async (req, res) => {
    if (!Buffer.isBuffer(req.body)) {
      const type = req.headers['content-type'] ?? 'none';
      throw new ApiError(
        415,
        'unsupported_media_type',
        `${SUPPORTED_IMAGE_MESSAGE}: send the image bytes as the body with Content-Type image/png, image/jpeg or image/webp (got ${type})`,
      );
    }
    const stored = await storeUpload(dataDir, req.body, limits.uploadPixels, quota);
    const fileName = sentFileName(req.headers['x-file-name']);
    if (fileName) await writeFileAtomic(sidecar(stored.name), JSON.stringify({ fileName }));
    res.status(201).json({ ...stored, url: `/api/uploads/${stored.name}`, ...(fileName ? { fileName } : {}) } satisfies UploadInfo);
  });

  router.get('/uploads/:name/info', async (req, res) => {
    const name = param(req, 'name');
    const file = await findStoredFile(uploadsDir(dataDir), name, 'upload');
    const meta = await sharp(file).metadata();
    let fileName: string | undefined;
    try {
      fileName = (JSON.parse(await fs.readFile(sidecar(name), 'utf8')) as { fileName?: string }).fileName;
    } catch {
      /* uploaded without a name */
    }
    res.json({ name, width: meta.width ?? 0, height: meta.height ?? 0, url: `/api/uploads/${name}`, ...(fileName ? { fileName } : {}) } satisfies UploadInfo);
  });

  router.get('/uploads/:name', async (req, res) => {
    send(res, await findStoredFile(uploadsDir(dataDir), param(req, 'name'), 'upload'));
  });

  router.get('/results/:name', async (req, res) => {
    send(res, await findStoredFile(resultsDir(dataDir), param(req, 'name'), 'result'));
  });

  // Drawn once per server: the picture never changes.
  const thumbnails = new Map<string, Promise<Buffer>>();
  router.get('/builtin/:name.png', async (req, res) => {
    const name = param(req, 'name');
    const spec = Object.hasOwn(BUILTIN_THUMBNAILS, name) ? BUILTIN_THUMBNAILS[name] : undefined;
    if (!spec) throw new ApiError(404, 'not_found', `no built-in image "${name}" (there is: ${Object.keys(BUILTIN_THUMBNAILS).join(', ')})`);
    if (!thumbnails.has(name)) thumbnails.set(name, encodePng(spec.draw(spec.width, spec.height)));
    res.setHeader('Cache-Control', 'private, max-age=3600');
    res.type('png').send(await thumbnails.get(name)!);
  });

  return router;
}

function send(res: Response, file: string): void {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  // Uploads are content-addressed and results content-named: a name always means the same bytes.
  res.setHeader('Cache-Control', 'private, max-age=3600');
  res.sendFile(file);
}

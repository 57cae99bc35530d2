/** Image uploads (raw image bodies) and the files nodes write: serving uploads and results by name. */
import express, { Router, type Response } from 'express';
import { findStoredFile, storeUpload, SUPPORTED_IMAGE_MESSAGE, UploadQuota } from '../store/uploads.ts';
import { resultsDir, uploadsDir } from '../store/paths.ts';
import { param } from './body.ts';
import { ApiError } from './errors.ts';

export interface UploadLimits {
  uploadBytes: number;
  uploadPixels: number;
  /** What the uploads folder may hold in all (507 beyond it). */
  uploadsTotalBytes: number;
}

export function uploadRoutes(dataDir: string, limits: UploadLimits): Router {
  const router = Router();
  const quota = new UploadQuota(uploadsDir(dataDir), limits.uploadsTotalBytes);

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
    res.status(201).json({ ...stored, url: `/api/uploads/${stored.name}` });
  });

  router.get('/uploads/:name', async (req, res) => {
    send(res, await findStoredFile(uploadsDir(dataDir), param(req, 'name'), 'upload'));
  });

  router.get('/results/:name', async (req, res) => {
    send(res, await findStoredFile(resultsDir(dataDir), param(req, 'name'), 'result'));
  });

  return router;
}

function send(res: Response, file: string): void {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  // Uploads are content-addressed and results content-named: a name always means the same bytes.
  res.setHeader('Cache-Control', 'private, max-age=3600');
  res.sendFile(file);
}

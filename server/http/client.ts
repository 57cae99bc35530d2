/** The built editor (Vite output), served statically with a single-page-app fallback. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import express, { Router } from 'express';

const NOT_BUILT_PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>Dual Style Studio</title></head>
<body style="font-family: system-ui, sans-serif; margin: 3rem">
<h1>Dual Style Studio</h1>
<p>The server is running, but the client is not built: run <code>npm run build</code>, then reload.</p>
<p>The API is at <a href="/api/health">/api/health</a>.</p>
</body></html>
`;

export function clientRoutes(clientDir: string): Router {
  const router = Router();
  const index = path.join(clientDir, 'index.html');
  if (!existsSync(index)) {
    router.get('/*path', (_req, res) => {
      res.status(200).type('html').send(NOT_BUILT_PAGE);
    });
    router.get('/', (_req, res) => {
      res.status(200).type('html').send(NOT_BUILT_PAGE);
    });
    return router;
  }
  router.use(express.static(clientDir, { index: 'index.html', dotfiles: 'ignore' }));
  // Client-side routes (anything without a file extension) get the app shell.
  router.get('/*path', (req, res, next) => {
    if (path.extname(req.path) !== '') return next();
    res.sendFile(index);
  });
  return router;
}

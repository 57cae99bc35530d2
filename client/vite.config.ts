/**
 * Builds the editor into dist/client (served by the studio server at /). In dev (`npm run dev:client`)
 * the API and socket.io are proxied to a studio server on 127.0.0.1:8188.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const clientDir = path.dirname(fileURLToPath(import.meta.url));
const projectRoot = path.resolve(clientDir, '..');
const studio = 'http://127.0.0.1:8188';

export default defineConfig({
  root: clientDir,
  base: '/',
  plugins: [react()],
  build: {
    outDir: path.join(projectRoot, 'dist/client'),
    emptyOutDir: true,
    sourcemap: true,
    chunkSizeWarningLimit: 1500,
  },
  server: {
    // The client imports the shared protocol types from server/protocol.
    fs: { allow: [projectRoot] },
    proxy: {
      '/api': { target: studio, changeOrigin: false },
      '/socket.io': { target: studio, ws: true },
    },
  },
});

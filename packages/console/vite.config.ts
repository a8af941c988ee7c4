import { defineConfig } from 'vite';

// The server serves dist/ at /console/ (packages/server/src/http/routes/console.ts).
// No React plugin: Vite's own transform handles TSX with the automatic runtime, and the
// console has no need for fast refresh in a build.
export default defineConfig({
  base: '/console/',
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, target: 'es2022', chunkSizeWarningLimit: 400 },
  server: { proxy: { '/v1': 'http://127.0.0.1:7070' } },
});

/**
 * Builds the lab dashboard into `dist/dashboard/` (served by the operator listener at `/`).
 * Assets get content hashes (cached as immutable); no inline scripts or styles, so
 * the page runs under a CSP that allows only its own origin.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: here,
  base: '/',
  publicDir: 'public',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    // Not dist/web/: tsc emits web/api/ there (the CLI uses the typed client), and this empties its outDir.
    outDir: fileURLToPath(new URL('../dist/dashboard/', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    // Inlined assets would be data: URLs; keep every asset a file so the CSP stays 'self'.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
  },
});

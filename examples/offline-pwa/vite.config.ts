import { outpost } from '@outpost/vite';
import { VitePWA } from 'vite-plugin-pwa';
import { defineConfig } from 'vite';
import { demoRepo } from '../shared/demo-repo.js';

/**
 * The largest file the service worker precaches. Workbox's default, 2 MiB, would leave out ONNX
 * Runtime's `.wasm` (14 MB, and 27 MB for the WebGPU build) with only a warning, and the app
 * would then start offline and fail at its first model load. 40 MiB holds both with room for a
 * newer ORT; the e2e test checks that every `outpost-ort/` file is in the precache manifest.
 */
const LARGEST_PRECACHED_FILE = 40 * 1024 * 1024;

// `outpost()` and `demoRepo()` as in the web app. VitePWA adds the web manifest and a Workbox
// service worker that precaches the whole build: the app shell, the Outpost worker and the ONNX
// Runtime files `outpost()` emits under `outpost-ort/`. Models are not precached: Outpost keeps
// them, by version and verified, in its own IndexedDB store.
export default defineConfig({
  plugins: [
    outpost(),
    demoRepo(),
    VitePWA({
      // The page registers the worker itself (src/main.ts): no `virtual:pwa-register` import,
      // which the examples' host, scanning every example's index.html, could not resolve, and no
      // inline registration script ('inline'), which the strict CSP the examples are served
      // under refuses.
      injectRegister: false,
      manifest: {
        name: 'Outpost offline digits',
        short_name: 'Digits',
        description: 'Recognises a drawn digit on the device, with or without a network',
        theme_color: '#2f6fde',
        background_color: '#f4f5f7',
        display: 'standalone',
        icons: [
          { src: 'icon-192.png', sizes: '192x192', type: 'image/png', purpose: 'any' },
          { src: 'icon-512.png', sizes: '512x512', type: 'image/png', purpose: 'any' },
          { src: 'icon-512.png', sizes: '512x512', type: 'image/png', purpose: 'maskable' },
        ],
      },
      workbox: {
        // The manifest and its icons are added by VitePWA itself (includeManifestIcons).
        globPatterns: ['**/*.{html,js,mjs,css,wasm}'],
        maximumFileSizeToCacheInBytes: LARGEST_PRECACHED_FILE,
        // The repository, its telemetry endpoint and the dashboard live at /repo/, outside the
        // app: never answer those navigations with the app shell.
        navigateFallbackDenylist: [/^\/repo\//],
        // A new build's service worker takes over at once: the first visit is controlled, and so
        // ready for offline, without a reload; an open page picks up the next build likewise.
        skipWaiting: true,
        clientsClaim: true,
      },
    }),
  ],
  server: { port: Number(process.env.PORT ?? 5173), host: process.env.HOST ?? 'localhost' },
});

// The harness's service worker, registered only with ?sw=1: the smallest thing an app does to
// start offline. Network first; every same-origin GET it sees (page, modules, the Outpost worker,
// onnxruntime-web's .mjs and .wasm) is kept, and served from the cache when the network is gone.
// Models are not cached here: they live in Outpost's own IndexedDB store.
const CACHE = 'outpost-harness-v1';

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith('/models/') || url.pathname.startsWith('/fixtures/') || url.pathname.startsWith('/__')) {
    return;
  }
  event.respondWith(
    (async () => {
      const cache = await caches.open(CACHE);
      try {
        const res = await fetch(event.request);
        if (res.ok) await cache.put(event.request, res.clone());
        return res;
      } catch (err) {
        const hit = await cache.match(event.request, { ignoreVary: true });
        if (hit) return hit;
        throw err;
      }
    })(),
  );
});

import { outpost } from '@outpost/vite';
import { defineConfig } from 'vite';

// The one line of Outpost configuration an app needs is `outpost()`.
export default defineConfig({
  plugins: [outpost()],
  server: { port: Number(process.env.PORT ?? 5173), host: process.env.HOST ?? 'localhost' },
});

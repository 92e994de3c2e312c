import { outpost } from '@outpost/vite';
import { defineConfig } from 'vite';

export default defineConfig({
  plugins: [outpost()],
});

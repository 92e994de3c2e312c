export { outpost, outpost as default } from './plugin.js';
export type { OutpostViteOptions } from './options.js';
export { outpostDefaults } from './options.js';

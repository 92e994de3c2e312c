export { createRuntime, parseInterval, resolveSource, resolveThreads } from './runtime.js';
export type { UpdateEventName, UpdateEvents, Updates } from './updates.js';
export type { BackgroundError, ModelCache, Runtime } from './runtime.js';
export { Model } from './model.js';
export { RUNTIME_DEFAULTS } from './options.js';
export type { LoadOptions, RunOptions, RuntimeOptions } from './options.js';
export type { Stream, StreamOptions, StreamResult, StreamSource, StreamStats } from './stream.js';

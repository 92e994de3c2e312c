export type { LoadOptions, RepoChanges, WriteProgress } from './repo-fs.js';
export { fsMetadataFetcher, loadRepoState, withRepoLock, writeRepoChanges } from './repo-fs.js';
export type { ServerOptions } from './server.js';
export { createServer } from './server.js';

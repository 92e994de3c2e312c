export { installErrorTransfer } from './error-transfer.js';
export { tensorBuffers } from './transfer.js';

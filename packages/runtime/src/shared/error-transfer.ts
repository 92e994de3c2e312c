import { deserializeError, serializeError, type SerializedError } from '@outpost/core';
import { transferHandlers, type TransferHandler } from 'comlink';

/**
 * Replaces comlink's handler for thrown values, which keeps only name, message and stack, with
 * one that carries Outpost's `code` and structured fields and rebuilds the same error class on
 * the other side. Installed on both sides of the worker boundary.
 */
export function installErrorTransfer(): void {
  const builtin = transferHandlers.get('throw');
  if (!builtin) return;
  const handler: TransferHandler<{ value: unknown }, SerializedError> = {
    canHandle: (v): v is { value: unknown } => builtin.canHandle(v),
    serialize: ({ value }) => [serializeError(value), []],
    deserialize: (s) => {
      throw deserializeError(s);
    },
  };
  transferHandlers.set('throw', handler);
}

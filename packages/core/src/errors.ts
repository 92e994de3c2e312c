/**
 * Every failure Outpost reports is an {@link OutpostError} subclass with a stable `code`. Codes
 * never change meaning; apps switch on them. Errors cross the worker boundary as
 * {@link SerializedError} and are rebuilt as the same class on the other side.
 */
export type ErrorCode =
  | 'INPUT_UNKNOWN'
  | 'INPUT_MISSING'
  | 'INPUT_TYPE'
  | 'INPUT_RANK'
  | 'INPUT_SHAPE'
  | 'INPUT_LENGTH'
  | 'INPUT_TOO_LARGE'
  | 'DOWNLOAD_FAILED'
  | 'INTEGRITY'
  | 'MODEL_FORMAT'
  | 'QUOTA_EXCEEDED'
  | 'STORAGE'
  | 'NOT_CACHED'
  | 'BACKEND_UNAVAILABLE'
  | 'RUN_FAILED'
  | 'PROTOCOL_MISMATCH'
  | 'ABORTED'
  | 'DISPOSED'
  | 'WORKER_FAILED'
  | 'METADATA_FORMAT'
  | 'METADATA_SIGNATURE'
  | 'METADATA_ROLLBACK'
  | 'METADATA_EXPIRED'
  | 'METADATA_MISMATCH'
  | 'UPDATE_FAILED'
  | 'TELEMETRY_REFUSED';

/** Base class of every error Outpost throws. */
export class OutpostError extends Error {
  override name = 'OutpostError';
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
  /** Structured fields beyond code and message, carried across the worker boundary. */
  details(): Record<string, unknown> {
    return {};
  }
}

/** An input tensor does not match what the model declares; nothing was run. */
export class InputError extends OutpostError {
  override name = 'InputError';
  constructor(
    code: Extract<
      ErrorCode,
      | 'INPUT_UNKNOWN'
      | 'INPUT_MISSING'
      | 'INPUT_TYPE'
      | 'INPUT_RANK'
      | 'INPUT_SHAPE'
      | 'INPUT_LENGTH'
      | 'INPUT_TOO_LARGE'
    >,
    message: string,
    readonly input: string,
    readonly expected?: unknown,
    readonly actual?: unknown,
  ) {
    super(code, message);
  }
  override details() {
    return { input: this.input, expected: this.expected, actual: this.actual };
  }
}

/** A download answered with a non-2xx status, or the network failed (`status` 0). */
export class DownloadError extends OutpostError {
  override name = 'DownloadError';
  constructor(
    message: string,
    readonly url: string,
    readonly status: number,
  ) {
    super('DOWNLOAD_FAILED', message);
  }
  override details() {
    return { url: this.url, status: this.status };
  }
}

/** Bytes do not hash to what was expected: downloaded, or read back from the store. */
export class IntegrityError extends OutpostError {
  override name = 'IntegrityError';
  constructor(
    message: string,
    readonly expected: string,
    readonly actual: string,
    readonly path?: string,
  ) {
    super('INTEGRITY', message);
  }
  override details() {
    return { expected: this.expected, actual: this.actual, path: this.path };
  }
}

/** The bytes are not a model the backend can read (an HTML page, truncated, random). */
export class ModelFormatError extends OutpostError {
  override name = 'ModelFormatError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('MODEL_FORMAT', message, options);
  }
}

/** Storage refused the write; nothing was kept and the models already stored are intact. */
export class QuotaError extends OutpostError {
  override name = 'QuotaError';
  constructor(
    message: string,
    readonly usage: number | null,
    readonly quota: number | null,
    readonly needed: number | null,
  ) {
    super('QUOTA_EXCEEDED', message);
  }
  override details() {
    return { usage: this.usage, quota: this.quota, needed: this.needed };
  }
}

/** IndexedDB failed for a reason other than quota. */
export class StorageError extends OutpostError {
  override name = 'StorageError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('STORAGE', message, options);
  }
}

/** The model is not in the store and could not be downloaded (offline). */
export class NotCachedError extends OutpostError {
  override name = 'NotCachedError';
  constructor(
    message: string,
    readonly model: string,
    readonly version: string,
  ) {
    super('NOT_CACHED', message);
  }
  override details() {
    return { model: this.model, version: this.version };
  }
}

/** One backend that was tried and why it was passed over. */
export interface BackendAttempt {
  backend: string;
  reason: string;
}

/** No backend could run the model; `attempts` says why each one failed. */
export class BackendError extends OutpostError {
  override name = 'BackendError';
  constructor(
    message: string,
    readonly attempts: BackendAttempt[],
  ) {
    super('BACKEND_UNAVAILABLE', message);
  }
  override details() {
    return { attempts: this.attempts };
  }
}

/** The backend raised while running the model. */
export class RunError extends OutpostError {
  override name = 'RunError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('RUN_FAILED', message, options);
  }
}

/** The worker script speaks another protocol version than the page (a stale cached script). */
export class ProtocolError extends OutpostError {
  override name = 'ProtocolError';
  constructor(
    message: string,
    readonly expected: number,
    readonly actual: unknown,
  ) {
    super('PROTOCOL_MISMATCH', message);
  }
  override details() {
    return { expected: this.expected, actual: this.actual };
  }
}

/** The caller's AbortSignal fired before the call finished. */
export class AbortError extends OutpostError {
  override name = 'AbortError';
  constructor(message = 'The operation was aborted') {
    super('ABORTED', message);
  }
}

/** The model or runtime was disposed or closed. */
export class DisposedError extends OutpostError {
  override name = 'DisposedError';
  constructor(message: string) {
    super('DISPOSED', message);
  }
}

/** The worker could not start, or died. */
export class WorkerError extends OutpostError {
  override name = 'WorkerError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('WORKER_FAILED', message, options);
  }
}

/** Why signed repository metadata was refused. */
export type MetadataErrorCode = Extract<
  ErrorCode,
  'METADATA_FORMAT' | 'METADATA_SIGNATURE' | 'METADATA_ROLLBACK' | 'METADATA_EXPIRED' | 'METADATA_MISMATCH'
>;

/**
 * Repository metadata was refused; the last trusted metadata is kept. `METADATA_FORMAT`: not
 * parseable or over its byte cap; `METADATA_SIGNATURE`: too few valid signatures from the role's
 * keys; `METADATA_ROLLBACK`: older than what was trusted (or the same version with other
 * content); `METADATA_EXPIRED`: past its expiry (a freeze attack or a stale repository);
 * `METADATA_MISMATCH`: disagrees with the role that pins it (mix-and-match).
 */
export class MetadataError extends OutpostError {
  override name = 'MetadataError';
  constructor(
    code: MetadataErrorCode,
    message: string,
    readonly role: string,
  ) {
    super(code, message);
  }
  override details() {
    return { role: this.role };
  }
}

/** An update could not be installed (unhealthy version, rolled back, or not applicable). */
export class UpdateError extends OutpostError {
  override name = 'UpdateError';
  constructor(
    message: string,
    readonly model: string,
    readonly version: string,
    options?: { cause?: unknown },
  ) {
    super('UPDATE_FAILED', message, options);
  }
  override details() {
    return { model: this.model, version: this.version };
  }
}

/**
 * The telemetry endpoint refused batches for good (400, 401, 403, 413 that cannot be split):
 * they are kept aside in the queue, never resent. Usually a wrong token or endpoint.
 */
export class TelemetryError extends OutpostError {
  override name = 'TelemetryError';
  constructor(
    message: string,
    /** The HTTP status of the last refusal. */
    readonly status: number,
    /** Batches set aside in the flush that raised this. */
    readonly batches: number,
  ) {
    super('TELEMETRY_REFUSED', message);
  }
  override details() {
    return { status: this.status, batches: this.batches };
  }
}

/** An error as it crosses the worker boundary. */
export interface SerializedError {
  name: string;
  code?: ErrorCode;
  message: string;
  stack?: string;
  details?: Record<string, unknown>;
}

/** Turns any thrown value into a plain, structured-cloneable object. */
export function serializeError(err: unknown): SerializedError {
  if (err instanceof OutpostError) {
    return {
      name: err.name,
      code: err.code,
      message: err.message,
      stack: err.stack,
      details: err.details(),
    };
  }
  if (err instanceof Error) return { name: err.name, message: err.message, stack: err.stack };
  return { name: 'Error', message: String(err) };
}

/** Rebuilds the error class a {@link SerializedError} came from. */
export function deserializeError(s: SerializedError): Error {
  const d = s.details ?? {};
  const str = (k: string) => {
    const v = d[k];
    return typeof v === 'string' ? v : '';
  };
  const num = (k: string) => {
    const v = d[k];
    return typeof v === 'number' ? v : null;
  };
  let err: Error;
  switch (s.name) {
    case 'InputError':
      err = new InputError(
        s.code as ConstructorParameters<typeof InputError>[0],
        s.message,
        str('input'),
        d.expected,
        d.actual,
      );
      break;
    case 'DownloadError':
      err = new DownloadError(s.message, str('url'), num('status') ?? 0);
      break;
    case 'IntegrityError':
      err = new IntegrityError(s.message, str('expected'), str('actual'), d.path as string);
      break;
    case 'ModelFormatError':
      err = new ModelFormatError(s.message);
      break;
    case 'QuotaError':
      err = new QuotaError(s.message, num('usage'), num('quota'), num('needed'));
      break;
    case 'StorageError':
      err = new StorageError(s.message);
      break;
    case 'NotCachedError':
      err = new NotCachedError(s.message, str('model'), str('version'));
      break;
    case 'BackendError':
      err = new BackendError(s.message, (d.attempts as BackendAttempt[]) ?? []);
      break;
    case 'RunError':
      err = new RunError(s.message);
      break;
    case 'ProtocolError':
      err = new ProtocolError(s.message, num('expected') ?? 0, d.actual);
      break;
    case 'AbortError':
      err = new AbortError(s.message);
      break;
    case 'DisposedError':
      err = new DisposedError(s.message);
      break;
    case 'WorkerError':
      err = new WorkerError(s.message);
      break;
    case 'MetadataError':
      err = new MetadataError(s.code as MetadataErrorCode, s.message, str('role'));
      break;
    case 'UpdateError':
      err = new UpdateError(s.message, str('model'), str('version'));
      break;
    case 'TelemetryError':
      err = new TelemetryError(s.message, num('status') ?? 0, num('batches') ?? 0);
      break;
    default:
      err = new Error(s.message);
      err.name = s.name;
  }
  if (s.stack) err.stack = s.stack;
  return err;
}

export type { LoadOptions, RepoChanges, WriteProgress } from './repo-fs.js';
export { fsMetadataFetcher, loadRepoState, withRepoLock, writeRepoChanges } from './repo-fs.js';
export type { RolloutActionOptions, RolloutControllerOptions, RolloutStatus, RolloutVerdict } from './rollout.js';
export {
  ROLLOUT_DEFAULTS,
  RolloutController,
  abortRollout,
  extrasOf,
  judgeRollout,
  measureRollout,
  pauseRollout,
  rolloutStatuses,
  startRollout,
} from './rollout.js';
export type { AbStatus, ArmFigures, Interval, StrategyOptions } from './strategies.js';
export { abFigures, compareArms, startAb, startShadow, stopAb, stopShadow } from './strategies.js';
export { DASHBOARD_CSP } from './dashboard.js';
export type { ServerOptions } from './server.js';
export { createServer } from './server.js';
export type { DeviceInfo, EventRecord, MetricPoint, Subject, TelemetryBatch } from './otlp.js';
export { logsRequestSchema, metricsRequestSchema } from './otlp.js';
export type { PostgresStorageOptions } from './postgres.js';
export { openPostgresStorage } from './postgres.js';
export type { SqliteStorageOptions } from './sqlite.js';
export { DEFAULT_DATABASE, openSqliteStorage } from './sqlite.js';
export type {
  DecisionQuery,
  DeviceFigures,
  DeviceFiguresQuery,
  DeviceRow,
  DriftRow,
  HealthRow,
  IngestResult,
  LatencyRow,
  RolloutAction,
  RolloutDecision,
  RolloutFigures,
  StorageAdapter,
  TelemetryQuery,
  UpdateRow,
  VersionFigures,
  VersionRow,
} from './storage.js';
export { histogramQuantile } from './storage.js';
export type { TelemetryOptions } from './telemetry.js';
export { TELEMETRY_DEFAULTS } from './telemetry.js';

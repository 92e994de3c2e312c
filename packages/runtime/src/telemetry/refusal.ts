import { TelemetryError, type TelemetryFlushReport } from '@outpost/core';

/** The error a flush that had batches refused for good raises in the app's handler, if any. */
export function refusalOf(r: TelemetryFlushReport): TelemetryError | undefined {
  if (r.setAside === 0) return undefined;
  return new TelemetryError(
    `The telemetry endpoint refused ${r.setAside} batch(es) for good (HTTP ${r.refusedStatus ?? '?'}); ` +
      'they are kept aside, not resent: check the endpoint and token',
    r.refusedStatus ?? 0,
    r.setAside,
  );
}

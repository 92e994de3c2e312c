import { DEVICE_CLASS, RESOURCE, SERVICE_NAME, bucketDown } from '@outpost/protocol';
import { attributes, type KeyValue } from './otlp.js';

/** GPU vendors reported by name; any other is `other`, never the adapter's own string. */
const GPU_VENDORS = ['nvidia', 'amd', 'intel', 'apple', 'arm', 'qualcomm', 'imagination', 'microsoft'] as const;

/** The coarse vendor of a WebGPU adapter, `none` without one. */
export function gpuVendorClass(vendor: string | undefined | null): string {
  if (vendor === null) return 'none';
  const v = (vendor ?? '').toLowerCase();
  return GPU_VENDORS.find((k) => v.includes(k)) ?? (v.includes('ati') ? 'amd' : 'other');
}

/** Browser family and major version from the user agent: `Chrome`/`Edge`/`Firefox`/`Safari`/`other`. */
export function browserClass(ua: string): { family: string; major: number } {
  const m =
    /Edg\/(\d+)/.exec(ua) ??
    /Firefox\/(\d+)/.exec(ua) ??
    /(?:Chrome|Chromium)\/(\d+)/.exec(ua) ??
    (/Safari\//.test(ua) ? /Version\/(\d+)/.exec(ua) : null);
  if (!m) return { family: 'other', major: 0 };
  const family = m[0].startsWith('Edg')
    ? 'Edge'
    : m[0].startsWith('Firefox')
      ? 'Firefox'
      : m[0].startsWith('Version')
        ? 'Safari'
        : 'Chrome';
  return { family, major: Number(m[1]) };
}

/** What the device class is made from; every field bucketed or coarsened before it is reported. */
export interface DeviceFacts {
  cores?: number;
  memoryGb?: number;
  /** The WebGPU adapter's vendor string; null without WebGPU. */
  gpuVendor?: string | null;
  userAgent?: string;
  deviceId: string;
  runtimeVersion: string;
  channel?: string;
  /** The share of runs whose duration (and drift figures) are recorded; counts are exact. */
  sampleRate?: number;
}

/** The resource attributes of every batch: service, install id and the coarse device class. */
export function deviceResource(f: DeviceFacts): KeyValue[] {
  const browser = browserClass(f.userAgent ?? '');
  return attributes({
    [RESOURCE.serviceName]: SERVICE_NAME,
    [RESOURCE.deviceId]: f.deviceId,
    [RESOURCE.deviceCores]: f.cores ? bucketDown(f.cores, DEVICE_CLASS.cores) : undefined,
    [RESOURCE.deviceMemory]: f.memoryGb ? bucketDown(f.memoryGb, DEVICE_CLASS.memoryGb) : undefined,
    [RESOURCE.gpuVendor]: f.gpuVendor === undefined ? undefined : gpuVendorClass(f.gpuVendor),
    [RESOURCE.browser]: browser.family,
    [RESOURCE.browserMajor]: browser.major,
    [RESOURCE.runtimeVersion]: f.runtimeVersion,
    [RESOURCE.channel]: f.channel,
    [RESOURCE.sampleRate]: f.sampleRate,
  });
}

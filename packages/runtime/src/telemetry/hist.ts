import { nanos, type HistogramDataPoint, type KeyValue } from './otlp.js';

/** A fixed-bucket histogram: OTLP's explicit-bounds shape (bucket i counts (bounds[i-1], bounds[i]]). */
export class Hist {
  readonly counts: Float64Array;
  count = 0;
  sum = 0;
  min = Infinity;
  max = -Infinity;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  add(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    this.counts[i] = this.counts[i]! + 1;
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  point(attrs: KeyValue[], start: number, end: number): HistogramDataPoint {
    return {
      attributes: attrs,
      startTimeUnixNano: nanos(start),
      timeUnixNano: nanos(end),
      count: String(this.count),
      sum: this.sum,
      min: this.min,
      max: this.max,
      bucketCounts: Array.from(this.counts, String),
      explicitBounds: [...this.bounds],
    };
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.sum = 0;
    this.min = Infinity;
    this.max = -Infinity;
  }
}

// Latency samples with a bound on memory, and the percentiles the report quotes.

/** Samples kept per series; past this, reservoir sampling keeps a uniform subset. */
export const latencySamplesMax = 1_000_000;

export class LatencySeries {
  private readonly samples: number[] = [];
  private seen = 0;

  add(ms: number): void {
    this.seen++;
    if (this.samples.length < latencySamplesMax) {
      this.samples.push(ms);
      return;
    }
    const slot = Math.floor(Math.random() * this.seen);
    if (slot < latencySamplesMax) this.samples[slot] = ms;
  }

  get count(): number {
    return this.seen;
  }

  summary(): { p50: number; p99: number; max: number; mean: number } {
    if (this.samples.length === 0) return { p50: 0, p99: 0, max: 0, mean: 0 };
    const sorted = Float64Array.from(this.samples).sort();
    const sum = sorted.reduce((total, ms) => total + ms, 0);
    return {
      p50: round2(percentile(sorted, 0.5)),
      p99: round2(percentile(sorted, 0.99)),
      max: round2(sorted[sorted.length - 1]!),
      mean: round2(sum / sorted.length),
    };
  }
}

/** Nearest-rank percentile of an ascending array. */
function percentile(sorted: Float64Array, q: number): number {
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

export function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

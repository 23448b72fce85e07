// The request-duration histogram (driftdb_http_request_duration_seconds), kept in plain typed arrays per route and
// status and handed to prom-client's registry as a custom collector at scrape time.
//
// Why not prom-client's Histogram: its observe() validates the labels and builds a hash string on every call, about
// 0.5 µs measured here, which is more than 1% of a GET's whole server time. Here a request costs a bucket search
// over a dozen bounds and three additions; the text format is produced only when Prometheus scrapes.

/** Upper bounds in seconds: a cached GET answers in well under a millisecond, a slow query in seconds. */
export const requestDurationBuckets: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export const requestDurationMetricName = 'driftdb_http_request_duration_seconds';

/** One route's counts: per status, one slot per bucket (not cumulative), then +Inf, sum (seconds) and count. */
export class RouteDurations {
  private readonly byStatus = new Map<number, Float64Array>();

  constructor(
    readonly method: string,
    readonly route: string,
  ) {}

  observe(statusCode: number, seconds: number): void {
    let slots = this.byStatus.get(statusCode);
    if (slots === undefined) {
      slots = new Float64Array(requestDurationBuckets.length + 3);
      this.byStatus.set(statusCode, slots);
    }
    let bucket = 0;
    while (bucket < requestDurationBuckets.length && seconds > requestDurationBuckets[bucket]!) bucket++;
    slots[bucket]! += 1;
    slots[requestDurationBuckets.length + 1]! += seconds;
    slots[requestDurationBuckets.length + 2]! += 1;
  }

  /** prom-client's metric values: cumulative `_bucket` series with `le`, then `_sum` and `_count`, per status. */
  values(): MetricValue[] {
    const values: MetricValue[] = [];
    const bucketName = `${requestDurationMetricName}_bucket`;
    for (const [status, slots] of this.byStatus) {
      const labels = { method: this.method, route: this.route, status_code: String(status) };
      let cumulative = 0;
      requestDurationBuckets.forEach((le, i) => {
        cumulative += slots[i]!;
        values.push({ metricName: bucketName, labels: { ...labels, le }, value: cumulative });
      });
      cumulative += slots[requestDurationBuckets.length]!;
      values.push({ metricName: bucketName, labels: { ...labels, le: '+Inf' }, value: cumulative });
      values.push({ metricName: `${requestDurationMetricName}_sum`, labels, value: slots[requestDurationBuckets.length + 1]! });
      values.push({ metricName: `${requestDurationMetricName}_count`, labels, value: slots[requestDurationBuckets.length + 2]! });
    }
    return values;
  }
}

interface MetricValue {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

/**
 * Every route's durations, as a metric prom-client's Registry can hold: it asks `get()` for the values when it
 * renders the text format (the same shape its own Histogram answers).
 */
export class RequestDurations {
  readonly name = requestDurationMetricName;
  readonly help = 'Time from receiving a request to finishing its answer, by method, route template and status.';
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly routes: RouteDurations[] = [];

  /** The counts of one route; made once, when the route is registered. */
  forRoute(method: string, route: string): RouteDurations {
    const durations = new RouteDurations(method, route);
    this.routes.push(durations);
    return durations;
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: MetricValue[] } {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.routes.flatMap((r) => r.values()) };
  }

  reset(): void {}
}

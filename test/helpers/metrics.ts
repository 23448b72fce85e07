// Test helper: reads the Prometheus text format a server answers at GET /metrics.

import type { TestServer } from './server.js';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Every sample of a text exposition (comments and blank lines skipped). */
export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The metric names an exposition declares (# TYPE lines): histograms once, without _bucket/_sum/_count. */
export function declaredMetricNames(text: string): Set<string> {
  return new Set([...text.matchAll(/^# TYPE (\S+) \S+$/gm)].map((m) => m[1]!));
}

/** The sum of the samples named `name` whose labels include `labels` (0 when there is none). */
export function metricValue(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

export async function scrape(server: Pick<TestServer, 'request'>): Promise<Sample[]> {
  const res = await server.request('GET', '/metrics');
  if (res.status !== 200) throw new Error(`GET /metrics: ${res.status} ${res.text}`);
  return parseMetrics(res.text);
}

/** Polls /metrics until `name` reaches `atLeast` (an event the test caused has happened on the server). */
export async function waitForMetric(server: Pick<TestServer, 'request'>, name: string, atLeast: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = metricValue(await scrape(server), name);
    if (value >= atLeast) return;
    if (Date.now() > deadline) throw new Error(`${name} stayed at ${value}, below ${atLeast}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

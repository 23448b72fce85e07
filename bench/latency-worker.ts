// Read-latency generator child process: N keep-alive clients loop GET requests and time each to its last byte with
// performance.now(). autocannon records whole milliseconds, too coarse for a p99 target of 1 ms; the body is counted,
// not parsed, so a large answer (a 1,000-version history) costs this client no JSON work inside the timing.

import { request, type Agent } from 'node:https';
import { performance } from 'node:perf_hooks';
import { rowKey } from './docs.js';
import { makeAgent } from './http.js';
import { LatencySeries } from './stats.js';
import { serveOneJob } from './worker-protocol.js';

export type LatencyRequest =
  /** GET …/rows/{random key}?asOf={random seq in [seqMin, seqMax]}: old versions of random keys. */
  | { kind: 'asOf'; table: string; keys: number; seqMin: number; seqMax: number }
  /** GET …/rows/{key}/history, always the same key. */
  | { kind: 'history'; table: string; key: string };

export interface LatencyJob {
  baseUrl: string;
  authorization: string;
  clients: number;
  durationSeconds: number;
  warmupSeconds: number;
  request: LatencyRequest;
}

export interface LatencySummary {
  clients: number;
  durationSeconds: number;
  requests: number;
  requestsPerSecond: number;
  /** Answers other than 200, and transport failures. */
  errors: number;
  statusCodes: Record<string, number>;
  errorSamples: string[];
  /** Mean bytes of a 200 answer's body. */
  bodyBytesMean: number;
  latencyMs: ReturnType<LatencySeries['summary']>;
}

const errorSamplesMax = 5;
const requestTimeoutMs = 30_000;

function pathFor(spec: LatencyRequest): string {
  if (spec.kind === 'history') return `/v1/tables/${spec.table}/rows/${encodeURIComponent(spec.key)}/history`;
  const key = rowKey(Math.floor(Math.random() * spec.keys));
  const seq = spec.seqMin + Math.floor(Math.random() * (spec.seqMax - spec.seqMin + 1));
  return `/v1/tables/${spec.table}/rows/${key}?asOf=${seq}`;
}

/** One GET, answered with its status and body length (and the start of the body when it is not a 200). */
function get(agent: Agent, job: LatencyJob, path: string): Promise<{ status: number; bytes: number; head: string }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, job.baseUrl), { method: 'GET', agent, headers: { authorization: job.authorization } }, (res) => {
      let bytes = 0;
      let head = '';
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (res.statusCode !== 200 && head.length < 300) head += chunk.toString('utf8', 0, 300);
      });
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, head }));
    });
    req.setTimeout(requestTimeoutMs, () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

class Counters {
  requests = 0;
  errors = 0;
  okBytes = 0;
  ok = 0;
  readonly statusCodes: Record<string, number> = {};
  readonly errorSamples: string[] = [];
  readonly latency = new LatencySeries();

  error(what: string): void {
    this.errors++;
    if (this.errorSamples.length < errorSamplesMax) this.errorSamples.push(what);
  }
}

async function phase(job: LatencyJob, agent: Agent, seconds: number): Promise<{ counters: Counters; seconds: number }> {
  const counters = new Counters();
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const client = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const path = pathFor(job.request);
      const sent = performance.now();
      try {
        const answer = await get(agent, job, path);
        counters.latency.add(performance.now() - sent);
        counters.requests++;
        counters.statusCodes[answer.status] = (counters.statusCodes[answer.status] ?? 0) + 1;
        if (answer.status === 200) {
          counters.ok++;
          counters.okBytes += answer.bytes;
        } else {
          counters.error(`GET ${path}: ${answer.status} ${answer.head}`);
        }
      } catch (error) {
        counters.error(`GET ${path}: ${String(error)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: job.clients }, client));
  return { counters, seconds: (performance.now() - started) / 1000 };
}

serveOneJob<LatencyJob, LatencySummary>(async (job) => {
  const agent = makeAgent(job.clients);
  try {
    if (job.warmupSeconds > 0) await phase(job, agent, job.warmupSeconds);
    const { counters, seconds } = await phase(job, agent, job.durationSeconds);
    return {
      clients: job.clients,
      durationSeconds: seconds,
      requests: counters.requests,
      requestsPerSecond: counters.requests / seconds,
      errors: counters.errors,
      statusCodes: counters.statusCodes,
      errorSamples: counters.errorSamples,
      bodyBytesMean: counters.ok === 0 ? 0 : Math.round(counters.okBytes / counters.ok),
      latencyMs: counters.latency.summary(),
    };
  } finally {
    agent.destroy();
  }
});

// Change-feed load worker: `writers` loops of durable PUTs of new keys while `subscribers` Server-Sent Event streams
// follow the feed; answers the write rate, whether every subscriber received every acknowledged commit in order,
// and the time from a write's acknowledgement to its event's arrival (both clocks are this process's).

import { Agent, request } from 'node:https';
import { performance } from 'node:perf_hooks';
import { benchDoc } from './docs.js';
import { httpCall } from './http.js';
import { serveOneJob } from './worker-protocol.js';

export interface FeedJob {
  url: string;
  authorization: string;
  table: string;
  writers: number;
  subscribers: number;
  durationSeconds: number;
}

export interface FeedSummary {
  writesPerSecond: number;
  writes: number;
  writeErrors: number;
  subscribers: number;
  /** Acknowledged commits some subscriber never received (summed over subscribers). */
  missing: number;
  /** Events that arrived out of seq order (summed over subscribers). */
  outOfOrder: number;
  /** Subscribers whose stream ended or failed before the run did. */
  streamsLost: number;
  /** Acknowledgement → event arrival, every (subscriber, commit) pair, in ms. */
  latencyMs: { p50: number; p99: number; max: number } | null;
  /**
   * This process's CPU time (user + system) per acknowledged write while the writers ran: the writers' own HTTP work
   * plus, with subscribers, their reading of every event (TLS, HTTP chunks, SSE parsing), on the server's 2 cores.
   */
  clientCpuMicrosPerWrite: number;
}

/** After the writers stop, subscribers get this long to receive the last commits. */
const drainMs = 15_000;

interface Subscriber {
  seqs: number[];
  arrivals: number[];
  outOfOrder: number;
  lost: boolean;
  close(): void;
}

function subscribe(job: FeedJob, agent: Agent, since: number): Subscriber {
  const subscriber: Subscriber = { seqs: [], arrivals: [], outOfOrder: 0, lost: false, close: () => {} };
  const url = new URL(`/v1/changes?tables=${job.table}`, job.url);
  const req = request(url, { agent, headers: { authorization: job.authorization, accept: 'text/event-stream', 'last-event-id': String(since) } }, (res) => {
    let buffer = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buffer += chunk;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const id = /^id: (\d+)$/m.exec(event);
        if (id === null) continue;
        const seq = Number(id[1]);
        const last = subscriber.seqs.at(-1);
        if (last !== undefined && seq <= last) subscriber.outOfOrder++;
        subscriber.seqs.push(seq);
        subscriber.arrivals.push(performance.now());
      }
    });
    res.on('close', () => (subscriber.lost = true));
  });
  req.on('error', () => (subscriber.lost = true));
  req.end();
  subscriber.close = () => req.destroy();
  return subscriber;
}

async function writer(job: FeedJob, agent: Agent, until: number, acks: Map<number, number>, errors: { count: number }, id: number): Promise<void> {
  const body = benchDoc(0, 1);
  for (let i = 0; performance.now() < until; i++) {
    try {
      const answer = await httpCall({ agent, baseUrl: job.url, method: 'PUT', path: `/v1/tables/${job.table}/rows/w${id}-${i}-${process.pid}`, headers: { authorization: job.authorization }, body });
      const seq = (answer.body as { seq?: unknown } | null)?.seq;
      if (answer.status < 300 && typeof seq === 'number') acks.set(seq, performance.now());
      else errors.count++;
    } catch {
      errors.count++;
    }
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

async function run(job: FeedJob): Promise<FeedSummary> {
  const agent = new Agent({ keepAlive: true, maxSockets: job.writers + job.subscribers + 4, rejectUnauthorized: false });
  const ready = await httpCall({ agent, baseUrl: job.url, method: 'GET', path: '/readyz' });
  const since = (ready.body as { seq: number }).seq;
  const subscribers = Array.from({ length: job.subscribers }, () => subscribe(job, agent, since));
  const acks = new Map<number, number>();
  const errors = { count: 0 };
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  const until = started + job.durationSeconds * 1000;
  await Promise.all(Array.from({ length: job.writers }, (_, i) => writer(job, agent, until, acks, errors, i)));
  const elapsed = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const newest = Math.max(...acks.keys());
  const drainUntil = performance.now() + drainMs;
  while (subscribers.some((s) => !s.lost && (s.seqs.at(-1) ?? 0) < newest) && performance.now() < drainUntil) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  for (const subscriber of subscribers) subscriber.close();
  let missing = 0;
  const latencies: number[] = [];
  for (const subscriber of subscribers) {
    const seen = new Map(subscriber.seqs.map((seq, i) => [seq, subscriber.arrivals[i]!]));
    for (const [seq, ackedAt] of acks) {
      const arrived = seen.get(seq);
      if (arrived === undefined) missing++;
      // An event can beat the writer's own answer (both leave the server in one turn): that counts as no delay.
      else latencies.push(Math.max(0, arrived - ackedAt));
    }
  }
  latencies.sort((a, b) => a - b);
  agent.destroy();
  return {
    writesPerSecond: acks.size / elapsed,
    writes: acks.size,
    writeErrors: errors.count,
    subscribers: subscribers.length,
    missing,
    outOfOrder: subscribers.reduce((sum, s) => sum + s.outOfOrder, 0),
    streamsLost: subscribers.filter((s) => s.lost && (s.seqs.at(-1) ?? 0) < newest).length,
    latencyMs: latencies.length === 0 ? null : { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), max: latencies.at(-1)! },
    clientCpuMicrosPerWrite: acks.size === 0 ? 0 : Math.round((cpu.user + cpu.system) / acks.size),
  };
}

serveOneJob<FeedJob, FeedSummary>(run);

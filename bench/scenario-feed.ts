// The change feed and idempotency keys on the write path (issue 13's targets): durable PUTs with 100 Server-Sent
// Event subscribers against none (≤ 10% cost, every subscriber gets every commit in order, acknowledgement → event
// p99 ≤ 50 ms), and PUTs with an Idempotency-Key against without (≤ 5% cost). Each pair alternates A B B A on one
// server, so a drift in the machine's load falls on both sides.

import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BenchContext } from './context.js';
import { workerScripts, workerSlackMs } from './context.js';
import { serverLogPath, startDriftServer, stopDriftServer, type DriftServer } from './drift-server.js';
import type { FeedJob, FeedSummary } from './feed-worker.js';
import { cpuSeconds, runWorker } from './procs.js';
import { measured, skipped, type ScenarioResult, type Target } from './report.js';
import { alternate, createTable, loadErrors, loadRun, type MeasuredLoad } from './scenarios-http.js';

export const feedTargets = {
  /** PUTs per second with the subscribers over without: the feed costs at most 10%. */
  withSubscribers: { on: 'ratio', op: '>=', limit: 0.9 },
  /** Acknowledgement → event, 99th percentile, in ms. */
  eventLatencyP99Ms: { on: 'value', op: '<=', limit: 50 },
  /** PUTs per second with an Idempotency-Key over without: at most 5%. */
  idempotencyKey: { on: 'ratio', op: '>=', limit: 0.95 },
} satisfies Record<string, Target>;

const subscribers = 100;
const feedWriters = 32;
const feedTable = 'bench_feed';
const idempotencyTable = 'bench_idempotent';

/** `subscribers: false` runs only the idempotency row (`--only idempotency`). */
export async function feedScenarios(ctx: BenchContext, which: { subscribers: boolean }): Promise<ScenarioResult[]> {
  const idempotencyName = 'durable PUT with an Idempotency-Key / without';
  const names = which.subscribers
    ? [`durable PUT with ${subscribers} SSE subscribers / without`, `SSE: acknowledgement → event, ${subscribers} subscribers`, idempotencyName]
    : [idempotencyName];
  let server: DriftServer;
  try {
    server = (
      await startDriftServer({
        dataDir: join(ctx.tmpRoot, 'feed'),
        logPath: serverLogPath(join(ctx.tmpRoot, 'logs'), 'feed'),
        password: ctx.password,
        readyTimeoutMs: 60_000,
        cpuProfDir: ctx.options.cpuProfDir,
      })
    ).server;
    await createTable(server, { name: feedTable, primaryKey: 'id', indexes: [] });
    await createTable(server, { name: idempotencyTable, primaryKey: 'id', indexes: [] });
  } catch (error) {
    const reason = `the server did not start: ${error instanceof Error ? error.message : String(error)}`;
    return names.map((name) => skipped(name, reason));
  }
  try {
    const subscriberResults = which.subscribers ? await subscriberRows(ctx, server, names) : [];
    return [...subscriberResults, await idempotencyRow(ctx, server, idempotencyName)];
  } finally {
    await stopDriftServer(server);
  }
}

/** A feed run's summary, with the server's CPU time per acknowledged write (steadier than the rate on a busy machine). */
type FeedRunResult = FeedSummary & { serverCpuMicrosPerWrite: number | null };

async function feedRun(ctx: BenchContext, server: DriftServer, withSubscribers: number): Promise<FeedRunResult> {
  const job: FeedJob = {
    url: server.baseUrl,
    authorization: server.authorization,
    table: feedTable,
    writers: feedWriters,
    subscribers: withSubscribers,
    durationSeconds: ctx.options.durationSeconds,
  };
  const pid = server.child.pid;
  const cpuBefore = pid === undefined ? null : cpuSeconds(pid);
  const summary = await runWorker<FeedJob, FeedSummary>(workerScripts.feed, job, ctx.options.durationSeconds * 1000 + 30_000 + workerSlackMs);
  const cpuAfter = pid === undefined ? null : cpuSeconds(pid);
  const writes = summary.writesPerSecond * ctx.options.durationSeconds;
  // The CPU also covers the subscribers' connecting and the run's warm-up: an upper bound per write.
  const serverCpuMicrosPerWrite = cpuBefore === null || cpuAfter === null || writes === 0 ? null : Math.round(((cpuAfter - cpuBefore) * 1e6) / writes);
  return { ...summary, serverCpuMicrosPerWrite };
}

async function subscriberRows(ctx: BenchContext, server: DriftServer, names: string[]): Promise<ScenarioResult[]> {
  const [without, withSubs] = await alternate(
    2,
    () => feedRun(ctx, server, 0),
    () => feedRun(ctx, server, subscribers),
  );
  const mean = (runs: FeedSummary[]) => runs.reduce((sum, run) => sum + run.writesPerSecond, 0) / runs.length;
  const missing = withSubs.reduce((sum, run) => sum + run.missing, 0);
  const outOfOrder = withSubs.reduce((sum, run) => sum + run.outOfOrder, 0);
  const lost = withSubs.reduce((sum, run) => sum + run.streamsLost, 0);
  const delivery = `every subscriber received every acknowledged commit in order: ${missing === 0 && outOfOrder === 0 && lost === 0 ? 'yes' : `NO (${missing} missing, ${outOfOrder} out of order, ${lost} streams lost)`}`;
  const p99s = withSubs.map((run) => run.latencyMs?.p99 ?? Infinity);
  const worstP99 = Math.max(...p99s);
  return [
    measured({
      name: `${names[0]} (${feedWriters} writers)`,
      value: mean(withSubs),
      unit: 'writes/s',
      // The "ceiling" of this row is the same server without subscribers.
      ceiling: mean(without),
      target: feedTargets.withSubscribers,
      errors: withSubs.reduce((sum, run) => sum + run.writeErrors, 0),
      notes: [
        'ratio to the same writes without subscribers (not the hello-world), 2 alternating pairs; the subscribers run ' +
          'in the load generator process, on the same 2 cores as the server',
        `server CPU per write (an upper bound: it includes warm-up and connecting): ${withSubs.map((run) => run.serverCpuMicrosPerWrite ?? '?').join('/')} µs with the subscribers, ${without.map((run) => run.serverCpuMicrosPerWrite ?? '?').join('/')} µs without`,
        `load generator CPU per write (writers, and the subscribers reading every event): ${withSubs.map((run) => run.clientCpuMicrosPerWrite).join('/')} µs with the subscribers, ${without.map((run) => run.clientCpuMicrosPerWrite).join('/')} µs without`,
        delivery,
      ],
      details: { without, with: withSubs },
    }),
    measured({
      name: names[1]!,
      value: worstP99,
      unit: 'ms',
      target: feedTargets.eventLatencyP99Ms,
      notes: [`p50 ${withSubs.map((run) => run.latencyMs?.p50.toFixed(1)).join(' / ')} ms, p99 ${p99s.map((p) => p.toFixed(1)).join(' / ')} ms (the worse run is the figure)`, delivery],
      details: { runs: withSubs.map((run) => run.latencyMs) },
    }),
  ];
}

/**
 * The pause before each run of the idempotency row. Once its heap grew by 64 MiB, the server compacts it after 500 ms
 * idle (--heap-reclaim-idle-ms): a full collection, 333 ms of CPU once seen here, about 12 µs per response of a run.
 * Without a pause it lands in whichever CPU window is open, the next run's (read before its load generator starts),
 * charging that run, keyed or plain, for garbage it did not make.
 */
const idleCompactionSettleMs = 3000;

async function idempotencyRow(ctx: BenchContext, server: DriftServer, name: string): Promise<ScenarioResult> {
  const connections = ctx.options.connections;
  const run = async (idempotency: boolean): Promise<MeasuredLoad> => {
    await sleep(idleCompactionSettleMs);
    return loadRun(ctx, server.baseUrl, connections, { kind: 'put', table: idempotencyTable, authorization: server.authorization, idempotency }, server.child.pid);
  };
  const [plain, keyed] = await alternate(2, () => run(false), () => run(true));
  const mean = (runs: MeasuredLoad[]) => runs.reduce((sum, r) => sum + r.okPerSecond, 0) / runs.length;
  const cpu = (runs: MeasuredLoad[]) => runs.map((r) => r.serverCpuMicrosPerResponse ?? '?').join('/');
  return measured({
    name: `${name} (${connections} conn)`,
    value: mean(keyed),
    unit: 'req/s',
    ceiling: mean(plain),
    target: feedTargets.idempotencyKey,
    latencyMs: keyed.at(-1)!.latencyMs,
    errors: keyed.reduce((sum, r) => sum + loadErrors(r), 0),
    notes: [
      'ratio to the same PUTs without the header (not the hello-world), 2 alternating pairs, each run after the server\'s idle heap compaction',
      `server CPU per response: ${cpu(keyed)} µs with the key, ${cpu(plain)} µs without`,
    ],
    details: { keyed, plain },
  });
}

// History at scale (issue 10): many versions per key loaded through the real server over HTTPS, then the server's
// RSS after the load and after restarts without and with a checkpoint (timed to /readyz), and the latency of reading
// old versions: `asOf` GETs of random keys at random old seqs, and the history of a key with 1,000 versions.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { limits } from '../src/limits.js';
import { workerScripts, workerSlackMs, type BenchContext } from './context.js';
import { rowKey } from './docs.js';
import { driftCall, failureWithServer, serverLogPath, startDriftServer, stopDriftServer, type DriftServer } from './drift-server.js';
import type { HistoryLoadJob, HistoryLoadSummary } from './history-loader.js';
import { describeAnswer, isRecord } from './http.js';
import type { LatencyJob, LatencyRequest, LatencySummary } from './latency-worker.js';
import { runWorker } from './procs.js';
import { MiB, failed, measured, skipped, type ScenarioResult, type Target } from './report.js';
import { checkpointOverHttp, rssMiB, rssSettleMs, timedRestart, type Restart } from './scenario-restart.js';
import { createTable } from './scenarios-http.js';

const historyTable = 'bench_history';
/** The key written `historyKeyVersions` times during the load, for the history-latency row. */
const historyKey = 'long-history';
const historyKeyVersions = 1000;
/** Rows per batch: the API's most, less one for the history key some batches also carry. */
const batchOps = limits.batchOpsMax - 1;
/** Batches in flight during the load: enough to keep the server busy while one batch travels and parses. */
const batchesInFlight = 8;
/** Connections of the `asOf` latency row, as issue 10 states its target. */
const asOfClients = 4;
/** The history row runs one request at a time: its target is the time to answer one history. */
const historyClients = 1;
/** The largest --checkpoint-interval-mb: the loading server writes no checkpoint of its own, so the first restart replays all. */
const noAutomaticCheckpoint = ['--checkpoint-interval-mb', '1048576'];
/** Versions issue 10 states the RSS and checkpoint-restart targets for. */
const targetVersionsCount = 20_000_000;
/** Without a checkpoint, a restart may take this long per million events (versions) in the log. */
const replaySecondsPerMillionMax = 5;

const historyTargets = {
  rssMiB: { on: 'value', op: '<=', limit: 1024 },
  withCheckpoint: { on: 'value', op: '<=', limit: 2 },
  asOfP99Ms: { on: 'value', op: '<=', limit: 1 },
  historyP99Ms: { on: 'value', op: '<=', limit: 10 },
} satisfies Record<string, Target>;

function rowNames(keys: number, versions: number, total: number) {
  return {
    load: `history load: ${keys} keys × ${versions} versions + 1 key × ${historyKeyVersions}, POST /v1/batch`,
    rssLoad: `history: RSS after the load, ${total} versions`,
    without: `history: restart, ${total} versions, no checkpoint`,
    rssWithout: 'history: RSS after the restart without a checkpoint',
    with: `history: restart, ${total} versions, checkpoint`,
    rssWith: 'history: RSS after the restart from the checkpoint',
    asOf: `history: GET ?asOf= of a cold version (${asOfClients} conn)`,
    history: `history: GET …/history of ${historyKeyVersions} versions (${historyClients} conn)`,
  };
}

/** Results in the order of `names`; a step that throws fails its row, and every row after it is skipped. */
class Steps {
  readonly results: ScenarioResult[] = [];
  private readonly order: string[];

  constructor(names: Record<string, string>) {
    this.order = Object.values(names);
  }

  add(result: ScenarioResult): void {
    this.results.push(result);
  }

  fail(error: unknown): ScenarioResult[] {
    const done = new Set(this.results.map((r) => r.name));
    const rest = this.order.filter((name) => !done.has(name));
    return [...this.results, failed(rest[0]!, error), ...rest.slice(1).map((name) => skipped(name, `${rest[0]} failed`))];
  }
}

export async function historyScenarios(ctx: BenchContext): Promise<ScenarioResult[]> {
  const { historyKeys: keys, historyVersions: versions } = ctx.options;
  const total = keys * versions + historyKeyVersions;
  const names = rowNames(keys, versions, total);
  const steps = new Steps(names);
  const dataDir = join(ctx.tmpRoot, 'history-data');
  mkdirSync(dataDir, { recursive: true });
  const scaleNote = total >= targetVersionsCount ? [] : [`the RSS and checkpoint-restart targets are stated for ${targetVersionsCount} versions`];
  const restartInput = { dataDir, table: historyTable, rows: keys + 1, serveArgs: noAutomaticCheckpoint };
  let server: DriftServer | null = null;
  try {
    ({ server } = await startDriftServer({
      dataDir,
      logPath: serverLogPath(join(ctx.tmpRoot, 'logs'), 'history-load'),
      password: ctx.password,
      readyTimeoutMs: 60_000,
      cpuProfDir: ctx.options.cpuProfDir,
      serveArgs: noAutomaticCheckpoint,
    }));
    const load = await loadHistory(server, keys, versions);
    steps.add(loadResult(names.load, load, total, keys, await logBytesNote(server)));
    await sleep(rssSettleMs);
    steps.add(rssResult(names.rssLoad, rssMiB(server), scaleNote));
    await stopDriftServer(server);
    server = null;

    const first = await timedRestart(ctx, { ...restartInput, label: 'history-no-checkpoint' });
    server = first.server;
    const replayTarget: Target = { on: 'value', op: '<=', limit: (replaySecondsPerMillionMax * total) / 1e6 };
    steps.add(restartResult(names.without, first.restart, replayTarget, [`target: ${replaySecondsPerMillionMax} s per 1M versions`]));
    steps.add(rssResult(names.rssWithout, first.restart.rssSettledMiB, scaleNote));
    const checkpoint = await checkpointOverHttp(server);
    if (typeof checkpoint === 'string') throw new Error(`POST /v1/admin/checkpoint: ${checkpoint}`);
    await stopDriftServer(server);
    server = null;

    const second = await timedRestart(ctx, { ...restartInput, label: 'history-checkpoint' });
    server = second.server;
    steps.add(restartResult(names.with, second.restart, historyTargets.withCheckpoint, [...scaleNote, checkpoint.note]));
    steps.add(rssResult(names.rssWith, second.restart.rssSettledMiB, scaleNote));
    const checks = await checkReads(server, load, versions);
    const asOf: LatencyRequest = { kind: 'asOf', table: historyTable, keys, seqMin: load.seqAllKeys, seqMax: load.seqLast };
    steps.add(latencyResult(names.asOf, await latencyRun(ctx, server, asOfClients, asOf), historyTargets.asOfP99Ms, [
      `random keys at random seqs from ${load.seqAllKeys} (every key written) to ${load.seqLast}, on the server restarted from the checkpoint`,
      ...checks.notes,
    ]));
    const history: LatencyRequest = { kind: 'history', table: historyTable, key: historyKey };
    const spread = load.historyKeyTailPuts === 0 ? "all in the load's batches, spread over the whole log" : `${historyKeyVersions - load.historyKeyTailPuts} in the load's batches, ${load.historyKeyTailPuts} by single PUTs after them`;
    steps.add(latencyResult(names.history, await latencyRun(ctx, server, historyClients, history), historyTargets.historyP99Ms, [`its versions were written ${spread}`, checks.coldNote]));
    return steps.results;
  } catch (error) {
    return steps.fail(server === null ? error : await failureWithServer(error, server));
  } finally {
    if (server !== null) await stopDriftServer(server);
  }
}

async function loadHistory(server: DriftServer, keys: number, versions: number): Promise<HistoryLoadSummary> {
  await createTable(server, { name: historyTable, primaryKey: 'id', indexes: ['grp'] });
  const job: HistoryLoadJob = {
    baseUrl: server.baseUrl,
    authorization: server.authorization,
    table: historyTable,
    keys,
    versions,
    historyKey,
    historyKeyVersions,
    batchOps: Math.min(batchOps, keys),
    batchesInFlight,
  };
  // Generous: a server loading 1,000 versions a second finishes within the bound.
  return runWorker<HistoryLoadJob, HistoryLoadSummary>(workerScripts.historyLoader, job, workerSlackMs + keys * versions + historyKeyVersions * 100);
}

async function logBytesNote(server: DriftServer): Promise<string[]> {
  const stats = await driftCall(server, 'GET', '/v1/admin/stats');
  const bytes = isRecord(stats.body) ? stats.body['logBytes'] : undefined;
  return typeof bytes === 'number' ? [`log: ${Math.round(bytes / MiB)} MiB`] : [];
}

function loadResult(name: string, load: HistoryLoadSummary, total: number, keys: number, logNotes: string[]): ScenarioResult {
  const notes = [
    `${load.batchVersions} versions in ${load.batchSeconds.toFixed(1)} s, ${load.commits - load.historyKeyTailPuts} batches of up to ${Math.min(batchOps, keys)} rows, ${batchesInFlight} in flight; 1 update in 10 changes the indexed field grp`,
    ...logNotes,
  ];
  if (load.versionsWritten !== total) notes.push(`wrote ${load.versionsWritten} versions, expected ${total}`);
  if (load.historyKeyTailPuts > 0) {
    const tailSeconds = load.seconds - load.batchSeconds;
    notes.push(`then ${load.historyKeyTailPuts} versions of ${historyKey} by single PUTs in ${tailSeconds.toFixed(1)} s, not in the rate (fewer batches than its versions × ${batchesInFlight})`);
  }
  if (load.windowWaits > 0) notes.push(`${load.windowWaits} batches waited for an earlier batch of the same keys (fewer keys than rows in flight)`);
  return measured({ name, value: load.batchVersions / load.batchSeconds, unit: 'versions/s', errors: 0, notes, details: { load } });
}

function rssResult(name: string, mib: number | null, scaleNote: string[]): ScenarioResult {
  if (mib === null) return skipped(name, 'VmRSS could not be read from /proc');
  return measured({ name, value: mib, unit: 'MiB', target: historyTargets.rssMiB, notes: [...scaleNote, `VmRSS ${rssSettleMs / 1000} s after the load or /readyz`] });
}

function restartResult(name: string, restart: Restart, target: Target, notes: string[]): ScenarioResult {
  return measured({ name, value: restart.readySeconds, unit: 's', target, notes: [...notes, ...restart.notes], details: { restart } });
}

function latencyRun(ctx: BenchContext, server: DriftServer, clients: number, request: LatencyRequest): Promise<LatencySummary> {
  const { durationSeconds, warmupSeconds } = ctx.options;
  const job: LatencyJob = { baseUrl: server.baseUrl, authorization: server.authorization, clients, durationSeconds, warmupSeconds, request };
  return runWorker<LatencyJob, LatencySummary>(workerScripts.latency, job, (durationSeconds + warmupSeconds) * 1000 + workerSlackMs);
}

function latencyResult(name: string, run: LatencySummary, target: Target, notes: string[]): ScenarioResult {
  const { p50, p99, max } = run.latencyMs;
  return measured({
    name,
    value: p99,
    unit: 'ms',
    target,
    latencyMs: { p50, p99 },
    errors: run.errors,
    notes: [
      `p99 shown as the result; ${run.requestsPerSecond.toFixed(0)} req/s, max ${max} ms, ${run.bodyBytesMean} bytes per answer; timed to the last byte by a node:https client`,
      ...notes,
      ...(run.errors > 0 ? [`status codes ${JSON.stringify(run.statusCodes)}; e.g. ${run.errorSamples.join(' | ')}`] : []),
    ],
    details: { latency: run },
  });
}

/**
 * The latency figures mean something only if the reads find what the load wrote; notes say what they did not. Also
 * the time of the first, cold, read of the long history, for its row.
 */
async function checkReads(server: DriftServer, load: HistoryLoadSummary, versions: number): Promise<{ notes: string[]; coldNote: string }> {
  const notes: string[] = [];
  // The first read of the history is the only cold one (the latency run then reads what the version cache holds).
  const started = performance.now();
  const history = await driftCall(server, 'GET', `/v1/tables/${historyTable}/rows/${historyKey}/history`);
  const coldMs = performance.now() - started;
  const count = isRecord(history.body) && Array.isArray(history.body['versions']) ? history.body['versions'].length : null;
  if (history.status !== 200 || count !== historyKeyVersions) notes.push(`history of ${historyKey}: ${count} versions, expected ${historyKeyVersions} (${describeAnswer(history).slice(0, 120)})`);
  const coldNote = `the first GET of this history after the restart (every version read from the log): ${coldMs.toFixed(1)} ms, the client's JSON parse included`;
  const old = await driftCall(server, 'GET', `/v1/tables/${historyTable}/rows/${rowKey(0)}?asOf=${load.seqAllKeys}`);
  if (old.status !== 200 || !isRecord(old.body) || typeof old.body['v'] !== 'number') notes.push(`GET ${rowKey(0)} asOf ${load.seqAllKeys}: ${describeAnswer(old)}`);
  const now = await driftCall(server, 'GET', `/v1/tables/${historyTable}/rows/${rowKey(0)}`);
  if (!isRecord(now.body) || now.body['v'] !== versions - 1) notes.push(`GET ${rowKey(0)} answers version ${isRecord(now.body) ? String(now.body['v']) : '?'}, expected ${versions - 1}`);
  return { notes, coldNote };
}

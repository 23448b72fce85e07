// The throughput scenarios against one running DriftDB server: ceiling, PUT, GET, indexed query, transactions.

import { performance } from 'node:perf_hooks';
import { workerScripts, workerSlackMs, type BenchContext } from './context.js';
import { benchDoc, groupRowsCount, groupsFor, groupValue, rowKey } from './docs.js';
import { driftCall, type DriftServer } from './drift-server.js';
import { describeAnswer, httpCall, isRecord, makeAgent, type HttpAnswer } from './http.js';
import type { LoadJob, LoadRequest, LoadSummary } from './load-worker.js';
import { cpuSeconds, runWorker } from './procs.js';
import { measured, skipped, type ScenarioResult, type Target } from './report.js';
import type { TxJob, TxMode, TxSummary } from './tx-worker.js';

export const putTable = 'bench_put';
export const rowsTable = 'bench_rows';
/** Rows written per POST /v1/batch while preloading (the API's batch limit is 1000 ops). */
const preloadBatchOps = 500;
/** Batches in flight while preloading; each is one commit of many rows. */
const preloadBatchesInFlight = 8;
/** Keys of the contended transaction scenario. */
export const hotKeysCount = 10;

export const targets = {
  put: { on: 'ratio', op: '>=', limit: 0.35 },
  get: { on: 'ratio', op: '>=', limit: 0.7 },
  query: { on: 'ratio', op: '>=', limit: 0.5 },
  txDistinct: { on: 'ratio', op: '>=', limit: 0.25 },
} satisfies Record<string, Target>;

/** A load run's summary, plus the server's CPU time per response when its process id is known. */
export type MeasuredLoad = LoadSummary & { serverCpuMicrosPerResponse: number | null };

export async function loadRun(ctx: BenchContext, url: string, connections: number, request: LoadRequest, serverPid?: number | null): Promise<MeasuredLoad> {
  const { durationSeconds, warmupSeconds } = ctx.options;
  const job: LoadJob = { url, connections, durationSeconds, warmupSeconds, request };
  const cpuBefore = serverPid ? cpuSeconds(serverPid) : null;
  const summary = await runWorker<LoadJob, LoadSummary>(workerScripts.load, job, (durationSeconds + warmupSeconds) * 1000 + workerSlackMs);
  const cpuAfter = serverPid ? cpuSeconds(serverPid) : null;
  // CPU is read around warm-up and measurement together; responses are counted in the measured part only, so
  // scale them up by the run's length (warm-up runs at about the same rate).
  const responses = summary.completed * ((durationSeconds + warmupSeconds) / durationSeconds);
  const serverCpuMicrosPerResponse =
    cpuBefore === null || cpuAfter === null || responses === 0 ? null : Math.round(((cpuAfter - cpuBefore) * 1e6) / responses);
  return { ...summary, serverCpuMicrosPerResponse };
}

/** A rate that does not depend on what else runs on the machine: server CPU per response, DriftDB beside hello-world. */
export function cpuNote(drift: MeasuredLoad, ceiling: MeasuredLoad): string[] {
  if (drift.serverCpuMicrosPerResponse === null || ceiling.serverCpuMicrosPerResponse === null) return [];
  return [`server CPU per response: ${drift.serverCpuMicrosPerResponse} µs (hello-world: ${ceiling.serverCpuMicrosPerResponse} µs)`];
}

export function loadErrors(summary: LoadSummary): number {
  return summary.non2xx + summary.errors + summary.timeouts;
}

export function errorNotes(label: string, summary: LoadSummary): string[] {
  if (loadErrors(summary) === 0) return [];
  return [`${label}: status codes ${JSON.stringify(summary.statusCodes)}, ${summary.errors} socket errors, ${summary.timeouts} timeouts`];
}

/** The hello-world alone, so a run always reports the ceiling even when no DriftDB scenario can run. */
export async function ceilingScenario(ctx: BenchContext): Promise<ScenarioResult> {
  if (ctx.ceilingUrl === null) return skipped('ceiling', 'the ceiling server did not start');
  const summary = await loadRun(ctx, ctx.ceilingUrl, ctx.options.connections, { kind: 'hello' });
  return measured({
    name: `ceiling (hello-world, ${ctx.options.connections} conn)`,
    value: summary.okPerSecond,
    unit: 'req/s',
    latencyMs: summary.latencyMs,
    errors: loadErrors(summary),
    notes: errorNotes('ceiling', summary),
    details: { ceiling: summary },
  });
}

interface LoadScenario {
  name: string;
  request: LoadRequest;
  target: Target;
}

/** The ceiling at the same connection count, right before the DriftDB run. */
async function loadScenario(ctx: BenchContext, server: DriftServer, scenario: LoadScenario): Promise<ScenarioResult> {
  const connections = ctx.options.connections;
  if (ctx.ceilingUrl === null) return skipped(scenario.name, 'the ceiling server did not start');
  const ceiling = await loadRun(ctx, ctx.ceilingUrl, connections, { kind: 'hello' }, ctx.ceilingPid);
  const drift = await loadRun(ctx, server.baseUrl, connections, scenario.request, server.child.pid);
  return measured({
    name: `${scenario.name} (${connections} conn)`,
    value: drift.okPerSecond,
    unit: 'req/s',
    ceiling: ceiling.okPerSecond,
    target: scenario.target,
    latencyMs: drift.latencyMs,
    errors: loadErrors(drift),
    notes: [...cpuNote(drift, ceiling), ...errorNotes('driftdb', drift), ...errorNotes('ceiling', ceiling)],
    details: { ceiling, driftdb: drift },
  });
}

export async function createTable(server: DriftServer, body: { name: string; primaryKey: string; indexes: string[] }): Promise<void> {
  const answer = await driftCall(server, 'POST', '/v1/tables', body);
  if (answer.status !== 201) throw new Error(`POST /v1/tables ${body.name}: ${describeAnswer(answer)}`);
}

export async function putScenario(ctx: BenchContext, server: DriftServer): Promise<ScenarioResult> {
  await createTable(server, { name: putTable, primaryKey: 'id', indexes: [] });
  const request: LoadRequest = { kind: 'put', table: putTable, authorization: server.authorization };
  return loadScenario(ctx, server, { name: 'durable PUT, new key', request, target: targets.put });
}

export async function getScenario(ctx: BenchContext, server: DriftServer): Promise<ScenarioResult> {
  const request: LoadRequest = { kind: 'get', table: rowsTable, rows: ctx.options.rows, authorization: server.authorization };
  return loadScenario(ctx, server, { name: `GET random key of ${ctx.options.rows}`, request, target: targets.get });
}

export async function queryScenario(ctx: BenchContext, server: DriftServer): Promise<ScenarioResult> {
  const groups = groupsFor(ctx.options.rows);
  const request: LoadRequest = { kind: 'query', table: rowsTable, groups, authorization: server.authorization };
  const name = `indexed query, ${groupRowsCount} of ${ctx.options.rows}`;
  const result = await loadScenario(ctx, server, { name, request, target: targets.query });
  result.notes.push(...(await checkQuery(server, groups)));
  return result;
}

/** Guards the figure: the query must answer 10 rows and use the index, or the note says what it did instead. */
async function checkQuery(server: DriftServer, groups: number): Promise<string[]> {
  const where = { group: groupValue(groups - 1, groups) };
  const notes: string[] = [];
  const answer = await driftCall(server, 'POST', '/v1/query', { table: rowsTable, where });
  const rows = isRecord(answer.body) && Array.isArray(answer.body['rows']) ? answer.body['rows'].length : null;
  if (answer.status !== 200 || rows !== groupRowsCount) notes.push(`check query answered ${rows} rows, expected ${groupRowsCount}: ${describeAnswer(answer)}`);
  const explain = await driftCall(server, 'POST', '/v1/query/explain', { table: rowsTable, where });
  const plan = isRecord(explain.body) && isRecord(explain.body['plan']) ? explain.body['plan'] : null;
  if (plan?.['access'] !== 'index') notes.push(`explain does not show index access: ${describeAnswer(explain)}`);
  return notes;
}

/** Loads `rows` rows into bench_rows (indexed on `group`): through POST /v1/batch when it works, else concurrent PUTs. */
export async function preloadScenario(ctx: BenchContext, server: DriftServer): Promise<ScenarioResult> {
  const rows = ctx.options.rows;
  await createTable(server, { name: rowsTable, primaryKey: 'id', indexes: ['group'] });
  const agent = makeAgent(ctx.options.preloadInFlight);
  const call = (method: string, path: string, body: unknown): Promise<HttpAnswer> =>
    httpCall({ agent, baseUrl: server.baseUrl, method, path, headers: { authorization: server.authorization }, body });
  const started = performance.now();
  try {
    const notes: string[] = [];
    const viaBatch = await preloadBatches(call, rows, notes);
    if (!viaBatch) await preloadPuts(call, rows, ctx.options.preloadInFlight);
    const seconds = (performance.now() - started) / 1000;
    notes.unshift(`${rows} rows via ${viaBatch ? `POST /v1/batch (${preloadBatchOps} per batch)` : `PUT (${ctx.options.preloadInFlight} in flight)`}, ${Math.round(rows / seconds)} rows/s`);
    notes.push(...(await checkRowCount(server, rows)));
    return measured({ name: `preload ${rows} rows`, value: seconds, unit: 's', errors: 0, notes });
  } finally {
    agent.destroy();
  }
}

type Call = (method: string, path: string, body: unknown) => Promise<HttpAnswer>;

function rowOp(i: number, groups: number): { op: 'put'; table: string; key: string; doc: object } {
  return { op: 'put', table: rowsTable, key: rowKey(i), doc: benchDoc(i, groups) };
}

/** False (with a note) when the first batch is refused, e.g. 404 before the batch route exists. */
async function preloadBatches(call: Call, rows: number, notes: string[]): Promise<boolean> {
  const groups = groupsFor(rows);
  const batchBody = (from: number) => ({ ops: Array.from({ length: Math.min(preloadBatchOps, rows - from) }, (_, j) => rowOp(from + j, groups)) });
  const first = await call('POST', '/v1/batch', batchBody(0));
  if (first.status !== 200) {
    notes.push(`POST /v1/batch unusable (${describeAnswer(first).slice(0, 120)}), fell back to PUTs`);
    return false;
  }
  let next = preloadBatchOps;
  const worker = async (): Promise<void> => {
    while (next < rows) {
      const from = next;
      next += preloadBatchOps;
      const answer = await call('POST', '/v1/batch', batchBody(from));
      if (answer.status !== 200) throw new Error(`preload batch at row ${from}: ${describeAnswer(answer)}`);
    }
  };
  await Promise.all(Array.from({ length: preloadBatchesInFlight }, worker));
  return true;
}

async function preloadPuts(call: Call, rows: number, inFlight: number): Promise<void> {
  const groups = groupsFor(rows);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < rows) {
      const i = next++;
      const answer = await call('PUT', `/v1/tables/${rowsTable}/rows/${rowKey(i)}`, benchDoc(i, groups));
      if (answer.status !== 201 && answer.status !== 200) throw new Error(`preload PUT ${rowKey(i)}: ${describeAnswer(answer)}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, rows) }, worker));
}

export async function checkRowCount(server: DriftServer, expected: number, table = rowsTable): Promise<string[]> {
  const answer = await driftCall(server, 'GET', `/v1/tables/${table}`);
  const count = isRecord(answer.body) ? answer.body['rowCount'] : undefined;
  return count === expected ? [] : [`${table} rowCount is ${String(count)}, expected ${expected} (${describeAnswer(answer).slice(0, 120)})`];
}

/** Null when POST /v1/transactions works; otherwise the reason to skip (404 = §6 not built yet). */
export async function transactionsMissing(server: DriftServer): Promise<string | null> {
  const begin = await driftCall(server, 'POST', '/v1/transactions', {});
  if (begin.status === 404) return 'POST /v1/transactions answered 404: the transactions API (§6) is not there yet';
  const id = isRecord(begin.body) ? begin.body['id'] : undefined;
  if (begin.status !== 201 || typeof id !== 'string') return `POST /v1/transactions: ${describeAnswer(begin)}`;
  await driftCall(server, 'POST', `/v1/transactions/${id}/rollback`);
  return null;
}

function txRun(ctx: BenchContext, baseUrl: string, authorization: string, mode: TxMode): Promise<TxSummary> {
  const { durationSeconds, warmupSeconds, txClients, rows } = ctx.options;
  const job: TxJob = { baseUrl, authorization, mode, clients: txClients, durationSeconds, warmupSeconds, table: rowsTable, rows, hotKeys: hotKeysCount };
  return runWorker<TxJob, TxSummary>(workerScripts.tx, job, (durationSeconds + warmupSeconds) * 1000 + workerSlackMs);
}

/** begin → get → put → commit loops; req/s is compared with the autocannon ceiling at `txClients` connections. */
export async function txScenario(ctx: BenchContext, server: DriftServer, mode: 'distinct' | 'hot'): Promise<ScenarioResult> {
  const name = `tx read+write, ${mode === 'hot' ? `hot set of ${hotKeysCount}` : 'distinct keys'} (${ctx.options.txClients} clients)`;
  if (ctx.ceilingUrl === null) return skipped(name, 'the ceiling server did not start');
  const ceiling = await loadRun(ctx, ctx.ceilingUrl, ctx.options.txClients, { kind: 'hello' }, ctx.ceilingPid);
  const clientCeiling = await txRun(ctx, ctx.ceilingUrl, '', 'hello');
  const drift = await txRun(ctx, server.baseUrl, server.authorization, mode);
  // The uncontended loop again, driven by autocannon itself: the same generator as the ceiling, so the ratio
  // measures the server rather than this client (which cannot retry, hence distinct keys only).
  const sequence =
    mode === 'distinct'
      ? await loadRun(ctx, server.baseUrl, ctx.options.txClients, {
          kind: 'tx',
          table: rowsTable,
          rows: ctx.options.rows,
          authorization: server.authorization,
        }, server.child.pid)
      : null;
  const clientNotes = [
    `${drift.commitsPerSecond.toFixed(0)} commits/s, abort rate ${(drift.abortRate * 100).toFixed(1)}% (${drift.aborts} retryable 409s), ` +
      `request p99 ${drift.requestLatencyMs.p99} ms; p50/p99 are whole transactions`,
    `this node:https client drives the hello-world at ${clientCeiling.requestsPerSecond.toFixed(0)} req/s with the same 4-request loop ` +
      `(ratio to it: ${(drift.requestsPerSecond / clientCeiling.requestsPerSecond).toFixed(3)})`,
  ];
  if (drift.writesOutsideTransaction > 0) {
    clientNotes.push(`${drift.writesOutsideTransaction} of ${drift.commits} commits answered {"seq": null} after a PUT with Transaction-Id: the write was not part of the transaction, so this is not a transaction figure (counted as errors)`);
  }
  if (drift.errors > 0) clientNotes.push(`status codes ${JSON.stringify(drift.statusCodes)}; e.g. ${drift.errorSamples.join(' | ')}`);
  const details = { ceiling, clientCeiling, driftdb: drift, ...(sequence !== null ? { autocannonSequence: sequence } : {}) };
  if (sequence === null) {
    return measured({
      name,
      value: drift.requestsPerSecond,
      unit: 'req/s',
      ceiling: ceiling.okPerSecond,
      latencyMs: { p50: drift.txLatencyMs.p50, p99: drift.txLatencyMs.p99 },
      errors: drift.errors + drift.writesOutsideTransaction,
      notes: clientNotes,
      details,
    });
  }
  // Distinct keys need no retries, so the loop runs on autocannon: the generator that measured the ceiling, which
  // this node:https client cannot match (it tops out near its own hello-world figure, noted above). Its figures stay
  // as notes; the commits/s and abort rate of the retrying client are the hot-set scenario's.
  return measured({
    name,
    value: sequence.okPerSecond,
    unit: 'req/s',
    ceiling: ceiling.okPerSecond,
    target: targets.txDistinct,
    latencyMs: sequence.latencyMs,
    errors: loadErrors(sequence) - (sequence.statusCodes['409'] ?? 0),
    notes: [
      `driven by autocannon at ${ctx.options.txClients} connections, each running begin → get → put → commit: ` +
        `${(sequence.okPerSecond / 4).toFixed(0)} commits/s; p50/p99 are single requests; ${sequence.statusCodes['409'] ?? 0} retryable 409s`,
      ...cpuNote(sequence, ceiling),
      ...clientNotes.map((note) => `retrying node:https client: ${note}`),
    ],
    details,
  });
}

/**
 * Runs `a` and `b` `times` times each, A B B A A B …, so a steady drift in the machine's load falls on both sides
 * alike; answers the runs of each side.
 */
export async function alternate<T>(times: number, a: () => Promise<T>, b: () => Promise<T>): Promise<[T[], T[]]> {
  const runsA: T[] = [];
  const runsB: T[] = [];
  for (let i = 0; i < times; i++) {
    if (i % 2 === 0) {
      runsA.push(await a());
      runsB.push(await b());
    } else {
      runsB.push(await b());
      runsA.push(await a());
    }
  }
  return [runsA, runsB];
}

// The spec floor (floor-server.ts): DriftDB's own PUT, GET and query requests against a server that does only what
// the HTTP contract asks of each request, with a Map for a database. Each row is its ratio to the hello-world measured
// right before it, so the DriftDB rows that follow can be read against both: the ceiling, and the best any engine
// behind this contract could do here.

import type { BenchContext } from './context.js';
import { workerScripts } from './context.js';
import { groupRowsCount, groupsFor } from './docs.js';
import type { FloorReady } from './floor-server.js';
import { basicAuth, describeAnswer, httpCall, isRecord, makeAgent } from './http.js';
import type { LoadRequest } from './load-worker.js';
import { startService, stopChild } from './procs.js';
import { measured, skipped, type ScenarioResult } from './report.js';
import { cpuNote, errorNotes, loadErrors, loadRun, putTable, rowsTable } from './scenarios-http.js';

const floorRequests = ['put', 'get', 'query'] as const;

function rowName(kind: (typeof floorRequests)[number], ctx: BenchContext): string {
  const what = { put: 'durable PUT, new key', get: `GET random key of ${ctx.options.rows}`, query: `indexed query, ${groupRowsCount} of ${ctx.options.rows}` }[kind];
  return `spec floor: ${what} (${ctx.options.connections} conn)`;
}

export async function floorScenarios(ctx: BenchContext): Promise<ScenarioResult[]> {
  if (ctx.ceilingUrl === null) return floorRequests.map((kind) => skipped(rowName(kind, ctx), 'the ceiling server did not start'));
  const authorization = basicAuth('admin', ctx.password);
  const floor = await startService<FloorReady>(workerScripts.floor, 60_000, [String(ctx.options.rows), authorization]);
  try {
    const url = `https://127.0.0.1:${floor.ready.port}`;
    await checkFloor(url, authorization);
    const requests: Record<(typeof floorRequests)[number], LoadRequest> = {
      put: { kind: 'put', table: putTable, authorization },
      get: { kind: 'get', table: rowsTable, rows: ctx.options.rows, authorization },
      query: { kind: 'query', table: rowsTable, groups: groupsFor(ctx.options.rows), authorization },
    };
    const results: ScenarioResult[] = [];
    for (const kind of floorRequests) results.push(await floorRow(ctx, url, floor.child.pid ?? null, kind, requests[kind]));
    return results;
  } finally {
    await stopChild(floor.child);
  }
}

async function floorRow(ctx: BenchContext, url: string, pid: number | null, kind: (typeof floorRequests)[number], request: LoadRequest): Promise<ScenarioResult> {
  const connections = ctx.options.connections;
  const ceiling = await loadRun(ctx, ctx.ceilingUrl!, connections, { kind: 'hello' }, ctx.ceilingPid);
  const floor = await loadRun(ctx, url, connections, request, pid);
  return measured({
    name: rowName(kind, ctx),
    value: floor.okPerSecond,
    unit: 'req/s',
    ceiling: ceiling.okPerSecond,
    latencyMs: floor.latencyMs,
    errors: loadErrors(floor),
    notes: [...cpuNote(floor, ceiling), ...errorNotes('floor', floor), ...errorNotes('ceiling', ceiling)],
    details: { ceiling, floor },
  });
}

/** The figures mean something only if the floor answers what DriftDB answers: a stored row, and a query's 10 rows. */
async function checkFloor(baseUrl: string, authorization: string): Promise<void> {
  const agent = makeAgent(1);
  try {
    const headers = { authorization };
    const row = await httpCall({ agent, baseUrl, method: 'GET', path: `/v1/tables/${rowsTable}/rows/row-0`, headers });
    if (row.status !== 200 || !isRecord(row.body) || row.body['id'] !== 'row-0') throw new Error(`floor GET: ${describeAnswer(row)}`);
    const query = await httpCall({ agent, baseUrl, method: 'POST', path: '/v1/query', headers, body: { table: rowsTable, where: { group: 'g0' } } });
    const rows = isRecord(query.body) && Array.isArray(query.body['rows']) ? query.body['rows'].length : null;
    if (query.status !== 200 || rows !== groupRowsCount) throw new Error(`floor query answered ${rows} rows: ${describeAnswer(query)}`);
    const unauthenticated = await httpCall({ agent, baseUrl, method: 'GET', path: `/v1/tables/${rowsTable}/rows/row-0` });
    if (unauthenticated.status !== 401) throw new Error(`floor GET without credentials: ${describeAnswer(unauthenticated)}`);
  } finally {
    agent.destroy();
  }
}

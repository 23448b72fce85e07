// The spec floor (floor-server.ts): DriftDB's own PUT, GET and query requests against a server that does only what
// the HTTP contract asks of each request, with a Map for a database. Each row is its ratio to the hello-world measured
// right before it, so the DriftDB rows that follow can be read against both: the ceiling, and the best any engine
// behind this contract could do here. Other peers (scenario-sqlite.ts) are measured by the same code.

import type { BenchContext } from './context.js';
import { workerScripts } from './context.js';
import { groupRowsCount, groupsFor } from './docs.js';
import type { FloorReady } from './floor-server.js';
import { basicAuth, describeAnswer, httpCall, isRecord, makeAgent } from './http.js';
import type { LoadRequest } from './load-worker.js';
import { startService, stopChild } from './procs.js';
import { measured, skipped, type ScenarioResult } from './report.js';
import { cpuNote, errorNotes, loadErrors, loadRun, putTable, rowsTable } from './scenarios-http.js';

export const peerRequests = ['put', 'get', 'query'] as const;
export type PeerRequest = (typeof peerRequests)[number];

/** A server answering the bench's requests under the HTTP contract, with something other than DriftDB behind it. */
export interface Peer {
  /** `floor` or `sqlite`: found again in a row's details, to compare peers row by row. */
  id: string;
  /** How its rows are named: `spec floor: GET random key of 100000 (32 conn)`. */
  label: string;
  url: string;
  pid: number | null;
  authorization: string;
}

export function peerRowName(label: string, kind: PeerRequest, ctx: BenchContext): string {
  const what = { put: 'durable PUT, new key', get: `GET random key of ${ctx.options.rows}`, query: `indexed query, ${groupRowsCount} of ${ctx.options.rows}` }[kind];
  return `${label}: ${what} (${ctx.options.connections} conn)`;
}

const floorLabel = 'spec floor';

export async function floorScenarios(ctx: BenchContext): Promise<ScenarioResult[]> {
  if (ctx.ceilingUrl === null) return peerRequests.map((kind) => skipped(peerRowName(floorLabel, kind, ctx), 'the ceiling server did not start'));
  const authorization = basicAuth('admin', ctx.password);
  const floor = await startService<FloorReady>(workerScripts.floor, 60_000, [String(ctx.options.rows), authorization]);
  try {
    const peer: Peer = { id: 'floor', label: floorLabel, url: `https://127.0.0.1:${floor.ready.port}`, pid: floor.child.pid ?? null, authorization };
    await checkPeer(peer);
    return await peerRows(ctx, peer);
  } finally {
    await stopChild(floor.child);
  }
}

/** The three rows of a peer, each with its own hello-world run right before it; details carry `peer` and `kind`. */
export async function peerRows(ctx: BenchContext, peer: Peer): Promise<ScenarioResult[]> {
  const requests: Record<PeerRequest, LoadRequest> = {
    put: { kind: 'put', table: putTable, authorization: peer.authorization },
    get: { kind: 'get', table: rowsTable, rows: ctx.options.rows, authorization: peer.authorization },
    query: { kind: 'query', table: rowsTable, groups: groupsFor(ctx.options.rows), authorization: peer.authorization },
  };
  const results: ScenarioResult[] = [];
  for (const kind of peerRequests) results.push(await peerRow(ctx, peer, kind, requests[kind]));
  return results;
}

async function peerRow(ctx: BenchContext, peer: Peer, kind: PeerRequest, request: LoadRequest): Promise<ScenarioResult> {
  const connections = ctx.options.connections;
  const ceiling = await loadRun(ctx, ctx.ceilingUrl!, connections, { kind: 'hello' }, ctx.ceilingPid);
  const load = await loadRun(ctx, peer.url, connections, request, peer.pid);
  return measured({
    name: peerRowName(peer.label, kind, ctx),
    value: load.okPerSecond,
    unit: 'req/s',
    ceiling: ceiling.okPerSecond,
    latencyMs: load.latencyMs,
    errors: loadErrors(load),
    notes: [...cpuNote(load, ceiling), ...errorNotes(peer.id, load), ...errorNotes('ceiling', ceiling)],
    details: { peer: peer.id, kind, ceiling, [peer.id]: load },
  });
}

/** The figures mean something only if the peer answers what DriftDB answers: a stored row, and a query's 10 rows. */
export async function checkPeer(peer: Peer): Promise<void> {
  const agent = makeAgent(1);
  try {
    const call = (method: string, path: string, body?: unknown, authorization: string | null = peer.authorization) =>
      httpCall({ agent, baseUrl: peer.url, method, path, headers: authorization === null ? {} : { authorization }, body });
    const row = await call('GET', `/v1/tables/${rowsTable}/rows/row-0`);
    if (row.status !== 200 || !isRecord(row.body) || row.body['id'] !== 'row-0') throw new Error(`${peer.label} GET: ${describeAnswer(row)}`);
    const query = await call('POST', '/v1/query', { table: rowsTable, where: { group: 'g0' } });
    const rows = isRecord(query.body) && Array.isArray(query.body['rows']) ? query.body['rows'].length : null;
    if (query.status !== 200 || rows !== groupRowsCount) throw new Error(`${peer.label} query answered ${rows} rows: ${describeAnswer(query)}`);
    const unauthenticated = await call('GET', `/v1/tables/${rowsTable}/rows/row-0`, undefined, null);
    if (unauthenticated.status !== 401) throw new Error(`${peer.label} GET without credentials: ${describeAnswer(unauthenticated)}`);
  } finally {
    agent.destroy();
  }
}

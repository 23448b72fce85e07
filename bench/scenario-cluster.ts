// Cluster mode against a single node in the same run (issue 14's targets): durable PUT throughput through three nodes
// on three etcd members beside one node's; GET on one node of the cluster beside one node's; writes while the etcd
// leader is SIGKILLed (the longest stall between acknowledgements, and acknowledged writes missing afterwards); and
// how long a node stopped for N commits takes to catch up. Every process runs on this one machine, so the cluster's
// nine processes share its cores with the load generators: the ratios are a floor, not what separate machines give.

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { appendBulkCommits, callNode, ClusterHarness, cliPath, type NodeAnswer } from '../scripts/cluster-harness.js';
import type { BenchContext } from './context.js';
import { benchDoc, groupsFor, rowKey } from './docs.js';
import { basicAuth } from './http.js';
import { freePort, stopChild, track } from './procs.js';
import { measured, type ScenarioResult, type Target } from './report.js';
import { loadErrors, loadRun, putTable, rowsTable, type MeasuredLoad } from './scenarios-http.js';

const targets = {
  putRatio: { on: 'ratio', op: '>=', limit: 0.5 },
  getRatio: { on: 'ratio', op: '>=', limit: 0.9 },
  stallSeconds: { on: 'value', op: '<=', limit: 5 },
  lost: { on: 'value', op: '<=', limit: 0 },
  catchUpSeconds: { on: 'value', op: '<=', limit: 30 },
} satisfies Record<string, Target>;

/** Rows preloaded for the GET comparison: enough for a realistic index, few enough to load into etcd quickly. */
const getRowsMax = 20_000;
const preloadBatchOps = 500;
/** Concurrent writers during the leader kill, spread over the three nodes. */
const killWriters = 24;
/** Commits made while a node is down, for the catch-up figure (the issue's figure). */
const catchUpCommits = 1_000_000;

interface Node {
  url: string;
  pid: number | null;
}

function call(url: string, authorization: string, method: string, path: string, body?: unknown, timeoutMs = 30_000): Promise<NodeAnswer> {
  return callNode(url, authorization, method, path, body, timeoutMs);
}

async function waitReady(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const answer = await call(url, '', 'GET', '/readyz', undefined, 2_000);
    if (answer.status === 200) return;
    await sleep(50);
  }
  throw new Error(`${url} was not ready within ${timeoutMs} ms`);
}

/** One plain node, started as the cluster's nodes are (HTTP, the same memory limit), for the comparison. */
async function startSingle(ctx: BenchContext, dir: string): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  const log = openSync(join(dir, 'single.log'), 'a');
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('DRIFTDB_')) env[name] = value;
  env['DRIFTDB_ADMIN_PASSWORD'] = ctx.password;
  const args = [cliPath, 'serve', '--data-dir', join(dir, 'single'), '--port', String(port), '--tls', 'off', '--memory-limit-mb', '512'];
  const child = track(spawn(process.execPath, args, { env, stdio: ['ignore', log, log] }));
  closeSync(log);
  const url = `http://127.0.0.1:${port}`;
  await waitReady(url, 60_000);
  return { child, url };
}

async function preload(url: string, authorization: string, rows: number): Promise<number> {
  const created = await call(url, authorization, 'POST', '/v1/tables', { name: rowsTable, primaryKey: 'id', indexes: ['group'] });
  if (created.status !== 201) throw new Error(`create ${rowsTable}: ${created.status} ${JSON.stringify(created.json)}`);
  const groups = groupsFor(rows);
  let seq = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < rows) {
      const from = next;
      next += preloadBatchOps;
      const ops = Array.from({ length: Math.min(preloadBatchOps, rows - from) }, (_, j) => ({ op: 'put', table: rowsTable, key: rowKey(from + j), doc: benchDoc(from + j, groups) }));
      const answer = await call(url, authorization, 'POST', '/v1/batch', { ops });
      if (answer.status !== 200) throw new Error(`preload batch at ${from}: ${answer.status} ${JSON.stringify(answer.json)}`);
      seq = Math.max(seq, answer.json.seq as number);
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  return seq;
}

/** PUT load through every node at once, connections split between them; the rates summed. */
async function putThrough(ctx: BenchContext, nodes: Node[], authorization: string): Promise<{ okPerSecond: number; errors: number; runs: MeasuredLoad[] }> {
  const per = Math.max(1, Math.round(ctx.options.connections / nodes.length));
  const runs = await Promise.all(nodes.map((node) => loadRun(ctx, node.url, per, { kind: 'put', table: putTable, authorization }, node.pid)));
  return { okPerSecond: runs.reduce((sum, run) => sum + run.okPerSecond, 0), errors: runs.reduce((sum, run) => sum + loadErrors(run), 0), runs };
}

export async function clusterScenarios(ctx: BenchContext): Promise<ScenarioResult[]> {
  const dir = join(ctx.tmpRoot, 'cluster');
  mkdirSync(dir, { recursive: true });
  const authorization = basicAuth('admin', ctx.password);
  const rows = Math.min(ctx.options.rows, getRowsMax);
  const results: ScenarioResult[] = [];

  // The single node stays up (idle) beside the cluster, so that the two are measured in turns (A B A B): this busy
  // machine's load swings more between minutes than the difference being measured.
  const single = await startSingle(ctx, dir);
  const harness = await ClusterHarness.launch({ dir: join(dir, 'nodes'), adminPassword: ctx.password }).catch(async (error: unknown) => {
    await stopChild(single.child);
    throw error;
  });
  try {
    const nodes: Node[] = harness.nodes.map((node) => ({ url: node.url, pid: node.pid }));
    const singleNode: Node = { url: single.url, pid: single.child.pid ?? null };
    const [n1, n2] = nodes as [Node, Node, Node];
    for (const url of [single.url, n1.url]) await call(url, authorization, 'POST', '/v1/tables', { name: putTable, primaryKey: 'id', indexes: [] });
    await waitSeqEverywhere(nodes, authorization, (await call(n1.url, authorization, 'GET', '/v1/admin/cluster')).json.appliedSeq);
    const singlePuts: MeasuredLoad[] = [];
    const clusterPuts: Array<{ okPerSecond: number; errors: number; runs: MeasuredLoad[] }> = [];
    for (let turn = 0; turn < 2; turn++) {
      singlePuts.push(await loadRun(ctx, single.url, ctx.options.connections, { kind: 'put', table: putTable, authorization }, singleNode.pid));
      clusterPuts.push(await putThrough(ctx, nodes, authorization));
    }
    const singlePut = mean(singlePuts.map((run) => run.okPerSecond));
    const clusterPut = mean(clusterPuts.map((run) => run.okPerSecond));
    results.push(
      measured({
        name: `cluster: durable PUT through 3 nodes (${ctx.options.connections} conn in all)`,
        value: clusterPut,
        unit: 'req/s',
        ceiling: singlePut,
        target: targets.putRatio,
        errors: clusterPuts.reduce((sum, run) => sum + run.errors, 0),
        notes: [
          `ratio to one node's durable PUT in this run, two turns each: one node ${singlePuts.map((run) => Math.round(run.okPerSecond)).join(', ')} req/s; three nodes ${clusterPuts.map((run) => Math.round(run.okPerSecond)).join(', ')} req/s`,
        ],
        details: { single: singlePuts, cluster: clusterPuts.map((run) => run.runs) },
      }),
    );

    await preload(single.url, authorization, rows);
    const loaded = await preload(n1.url, authorization, rows);
    await waitSeqEverywhere(nodes, authorization, loaded);
    const singleGets: MeasuredLoad[] = [];
    const clusterGets: MeasuredLoad[] = [];
    for (let turn = 0; turn < 2; turn++) {
      singleGets.push(await loadRun(ctx, single.url, ctx.options.connections, { kind: 'get', table: rowsTable, rows, authorization }, singleNode.pid));
      clusterGets.push(await loadRun(ctx, n2.url, ctx.options.connections, { kind: 'get', table: rowsTable, rows, authorization }, n2.pid));
    }
    results.push(
      measured({
        name: `cluster: GET random key of ${rows} on one node (${ctx.options.connections} conn)`,
        value: mean(clusterGets.map((run) => run.okPerSecond)),
        unit: 'req/s',
        ceiling: mean(singleGets.map((run) => run.okPerSecond)),
        target: targets.getRatio,
        errors: clusterGets.reduce((sum, run) => sum + loadErrors(run), 0),
        latencyMs: clusterGets[0]!.latencyMs,
        notes: [
          `ratio to one node's GET in this run, two turns each: one node ${singleGets.map((run) => Math.round(run.okPerSecond)).join(', ')} req/s; a cluster node ${clusterGets.map((run) => Math.round(run.okPerSecond)).join(', ')} req/s`,
          `server CPU per GET: one node ${singleGets.map((run) => run.serverCpuMicrosPerResponse).join(', ')} µs; a cluster node ${clusterGets.map((run) => run.serverCpuMicrosPerResponse).join(', ')} µs`,
        ],
        details: { single: singleGets, cluster: clusterGets },
      }),
    );
    await stopChild(single.child);

    results.push(...(await leaderKill(harness, nodes, authorization)));
    results.push(await catchUp(harness, nodes, authorization));
  } finally {
    await stopChild(single.child);
    await harness.down();
  }
  return results;
}

function mean(values: number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}

/** Writers through every node while the etcd leader is SIGKILLed (and restarted 3 s later). */
async function leaderKill(harness: ClusterHarness, nodes: Node[], authorization: string): Promise<ScenarioResult[]> {
  await call(nodes[0]!.url, authorization, 'POST', '/v1/tables', { name: 'bench_kill', primaryKey: 'id', indexes: [] });
  const acknowledged: Array<{ key: string; seq: number; at: number }> = [];
  let running = true;
  let failures = 0;
  const writer = async (w: number): Promise<void> => {
    const node = nodes[w % nodes.length]!;
    for (let n = 0; running; n++) {
      const key = `w${w}-${n}`;
      const answer = await call(node.url, authorization, 'PUT', `/v1/tables/bench_kill/rows/${key}`, { w, n }, 15_000);
      if (answer.status === 201) acknowledged.push({ key, seq: answer.json.seq as number, at: performance.now() });
      else {
        failures++;
        await sleep(20);
      }
    }
  };
  const writers = Promise.all(Array.from({ length: killWriters }, (_, w) => writer(w)));
  await sleep(3_000);
  const leader = await harness.etcdLeader();
  const killedAt = performance.now();
  if (leader >= 0) await harness.signalEtcd(leader, 'SIGKILL');
  await sleep(3_000);
  if (leader >= 0) harness.startEtcd(leader);
  await sleep(4_000);
  running = false;
  await writers;

  // The longest gap between acknowledgements from the kill on (acknowledgements arrive every few ms otherwise).
  const times = acknowledged.map((a) => a.at).filter((at) => at >= killedAt - 1_000).sort((a, b) => a - b);
  let stallMs = 0;
  for (let i = 1; i < times.length; i++) stallMs = Math.max(stallMs, times[i]! - times[i - 1]!);
  const firstAfter = times.find((at) => at >= killedAt);
  stallMs = Math.max(stallMs, firstAfter === undefined ? Number.POSITIVE_INFINITY : firstAfter - killedAt);

  const maxSeq = Math.max(0, ...acknowledged.map((a) => a.seq));
  let lost = 0;
  for (const node of nodes) {
    const keys = new Set<string>();
    let cursor: string | null = null;
    do {
      const page: { status: number; json: any } = await call(
        node.url,
        authorization,
        'GET',
        `/v1/tables/bench_kill/rows?limit=1000&minSeq=${maxSeq}${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`,
      );
      if (page.status !== 200) throw new Error(`reading bench_kill on ${node.url}: ${page.status} ${JSON.stringify(page.json)}`);
      for (const row of page.json.rows as Array<{ id: string }>) keys.add(row.id);
      cursor = page.json.nextCursor as string | null;
    } while (cursor !== null);
    lost += acknowledged.filter((a) => !keys.has(a.key)).length;
  }
  const notes = [`${acknowledged.length} writes acknowledged through ${killWriters} writers over 3 nodes, ${failures} refused or failed (not acknowledged)`, `etcd member ${leader + 1} was the leader`];
  return [
    measured({ name: 'cluster: etcd leader SIGKILLed, longest write stall', value: stallMs / 1000, unit: 's', target: targets.stallSeconds, errors: 0, notes }),
    measured({ name: 'cluster: acknowledged writes missing on any node after it', value: lost, unit: 'rows', target: targets.lost, errors: 0, notes: ['every acknowledged key read back on each of the 3 nodes'] }),
  ];
}

/**
 * A node stopped (SIGTERM) while the shared log grows by `catchUpCommits` commits, then restarted: seconds until ready.
 * Making a million commits through the API would take this machine a quarter of an hour, so they are proposed straight
 * into etcd, as a node proposes them (batches of sealed one-row PUT records, each conditional on the head), in batches
 * of `bulkCommitsPerBatch`. The two live nodes apply them as they would any batch; etcd is trimmed behind them, so the
 * restarted node reads most of the backlog from a peer and the rest from etcd, which is the path under test.
 */
async function catchUp(harness: ClusterHarness, nodes: Node[], authorization: string): Promise<ScenarioResult> {
  const table = 'bench_catch_up';
  await call(nodes[0]!.url, authorization, 'POST', '/v1/tables', { name: table, primaryKey: 'id', indexes: [] });
  await harness.stopNode(2, 'SIGTERM');
  const started = performance.now();
  const head = await appendBulkCommits(harness.endpoints, { table, count: catchUpCommits, perBatch: bulkCommitsPerBatch, padChars: bulkDocChars });
  const writeSeconds = (performance.now() - started) / 1000;
  // Two nodes applying a million commits on the two cores they share with etcd: allow them minutes.
  await waitSeqEverywhere(nodes.slice(0, 2), authorization, head, 600_000);
  const appliedSeconds = (performance.now() - started) / 1000;
  const restarted = performance.now();
  harness.startNode(2);
  await harness.waitReady(2, 600_000);
  const seconds = (performance.now() - restarted) / 1000;
  const status = await call(harness.nodes[2]!.url, authorization, 'GET', '/v1/admin/cluster');
  const applied = status.json?.appliedSeq as number;
  const rows = await call(harness.nodes[2]!.url, authorization, 'GET', `/v1/tables/${table}`);
  return measured({
    name: `cluster: a node down ${catchUpCommits} commits catches up (restart to ready)`,
    value: seconds,
    unit: 's',
    target: targets.catchUpSeconds,
    errors: applied >= head ? 0 : 1,
    notes: [
      `the commits were proposed straight into etcd in ${writeSeconds.toFixed(1)} s (batches of ${bulkCommitsPerBatch} one-row PUT records); the two live nodes had applied them ${appliedSeconds.toFixed(1)} s after the start`,
      `node3 ready at seq ${applied} (head ${head}), ${rows.json?.rowCount as number} rows in ${table}: ${Math.round(catchUpCommits / seconds)} commits/s from restart to ready`,
    ],
  });
}

/** One-row PUT records per bulk batch, and the characters of each document's padding (about a bench document's). */
const bulkCommitsPerBatch = 1_000;
const bulkDocChars = 150;

async function waitSeqEverywhere(nodes: Node[], authorization: string, seq: number, waitMs = 120_000): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (const node of nodes) {
    // Each try waits up to --min-seq-wait-ms (5 s) on the node, then answers 503.
    let answer = await call(node.url, authorization, 'GET', `/v1/tables?minSeq=${seq}`);
    while (answer.status !== 200 && Date.now() < deadline) answer = await call(node.url, authorization, 'GET', `/v1/tables?minSeq=${seq}`);
    if (answer.status !== 200) throw new Error(`${node.url} did not reach seq ${seq}: ${answer.status}`);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

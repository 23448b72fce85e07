// Transaction load generator child process: N keep-alive clients each loop begin → get → put → commit.

import type { Agent } from 'node:https';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { rowKey } from './docs.js';
import { describeAnswer, httpCall, isRecord, makeAgent, type HttpAnswer } from './http.js';
import { LatencySeries } from './stats.js';
import { serveOneJob } from './worker-protocol.js';

/** 'hello' runs the same 4-request loop against the ceiling server, to show what this client itself can drive. */
export type TxMode = 'distinct' | 'hot' | 'hello';

export interface TxJob {
  baseUrl: string;
  authorization: string;
  mode: TxMode;
  clients: number;
  durationSeconds: number;
  warmupSeconds: number;
  table: string;
  /** Preloaded rows `rowKey(0..rows-1)`; 'distinct' spreads clients over them. */
  rows: number;
  /** Size of the hot set in 'hot' mode. */
  hotKeys: number;
}

export interface TxSummary {
  mode: TxMode;
  clients: number;
  durationSeconds: number;
  requests: number;
  requestsPerSecond: number;
  sequences: number;
  commits: number;
  commitsPerSecond: number;
  aborts: number;
  /** Aborted (409 retryable) ÷ (committed + aborted) transactions. */
  abortRate: number;
  /** Answers that are neither success nor a retryable 409, plus transport failures. */
  errors: number;
  /**
   * Commits that answered `{"seq": null}` after the transaction had written: the write did not join the
   * transaction (it was autocommitted), so the figures do not measure transactions.
   */
  writesOutsideTransaction: number;
  statusCodes: Record<string, number>;
  errorSamples: string[];
  requestLatencyMs: ReturnType<LatencySeries['summary']>;
  txLatencyMs: ReturnType<LatencySeries['summary']>;
}

/** Bound on loop iterations per client, on top of the deadline. */
const sequencesPerClientMax = 10_000_000;
const errorSamplesMax = 5;
/** Pause after a 503 (capacity bound hit), so a refused client does not spin on the server. */
const busyBackoffMs = 50;

class Counters {
  requests = 0;
  sequences = 0;
  commits = 0;
  aborts = 0;
  errors = 0;
  writesOutsideTransaction = 0;
  readonly statusCodes: Record<string, number> = {};
  readonly errorSamples: string[] = [];
  readonly requestLatency = new LatencySeries();
  readonly txLatency = new LatencySeries();

  error(what: string): void {
    this.errors++;
    if (this.errorSamples.length < errorSamplesMax) this.errorSamples.push(what);
  }
}

interface Client {
  job: TxJob;
  agent: Agent;
  counters: Counters;
  index: number;
}

async function step(client: Client, method: string, path: string, body?: unknown, txId?: string): Promise<HttpAnswer | null> {
  const headers: Record<string, string> = { authorization: client.job.authorization };
  if (txId !== undefined) headers['transaction-id'] = txId;
  const started = performance.now();
  try {
    const answer = await httpCall({ agent: client.agent, baseUrl: client.job.baseUrl, method, path, headers, body });
    client.counters.requests++;
    client.counters.requestLatency.add(performance.now() - started);
    const code = String(answer.status);
    client.counters.statusCodes[code] = (client.counters.statusCodes[code] ?? 0) + 1;
    return answer;
  } catch (error) {
    client.counters.error(`${method} ${path}: ${String(error)}`);
    return null;
  }
}

function isRetryable(answer: HttpAnswer): boolean {
  return answer.status === 409 && isRecord(answer.body) && answer.body['retryable'] === true;
}

function keyFor(client: Client, sequence: number): string {
  const { job, index } = client;
  if (job.mode === 'hot') return rowKey(Math.floor(Math.random() * job.hotKeys));
  // Client i takes keys i, i+N, i+2N…: no two clients ever touch the same key.
  return rowKey((index + job.clients * sequence) % job.rows);
}

/** One read-then-write transaction; every outcome is counted. */
async function transaction(client: Client, sequence: number): Promise<void> {
  const { counters, job } = client;
  const started = performance.now();
  const begin = await step(client, 'POST', '/v1/transactions', {});
  if (begin === null) return;
  const id = isRecord(begin.body) ? begin.body['id'] : undefined;
  if (begin.status !== 201 || typeof id !== 'string') {
    await settled(client, begin, [], undefined, 'begin');
    return;
  }
  const path = `/v1/tables/${job.table}/rows/${encodeURIComponent(keyFor(client, sequence))}`;
  const read = await step(client, 'GET', path, undefined, id);
  if (!(await settled(client, read, [200, 404], id, 'get'))) return;
  const doc = read!.status === 200 && isRecord(read!.body) ? read!.body : {};
  const n = typeof doc['n'] === 'number' ? doc['n'] : 0;
  const write = await step(client, 'PUT', path, { ...doc, n: n + 1 }, id);
  if (!(await settled(client, write, [200, 201], id, 'put'))) return;
  const commit = await step(client, 'POST', `/v1/transactions/${id}/commit`);
  // A refused commit may leave the transaction open (aborted) on the server: roll it back too.
  if (!(await settled(client, commit, [200], id, 'commit'))) return;
  if (isRecord(commit!.body) && commit!.body['seq'] === null) counters.writesOutsideTransaction++;
  counters.commits++;
  counters.txLatency.add(performance.now() - started);
}

/**
 * True when the step succeeded; otherwise counts an abort or an error and rolls the transaction back, as a
 * well-behaved client does after a failure (the server keeps an aborted transaction, and its slot, until then).
 */
async function settled(client: Client, answer: HttpAnswer | null, okStatuses: number[], txId: string | undefined, what: string): Promise<boolean> {
  if (answer !== null && okStatuses.includes(answer.status)) return true;
  if (answer !== null && isRetryable(answer)) client.counters.aborts++;
  else if (answer !== null) client.counters.error(`${what}: ${describeAnswer(answer)}`);
  if (txId !== undefined) await step(client, 'POST', `/v1/transactions/${txId}/rollback`);
  if (answer?.status === 503) await sleep(busyBackoffMs);
  return false;
}

async function helloSequence(client: Client): Promise<void> {
  for (let i = 0; i < 4; i++) {
    const answer = await step(client, 'GET', '/');
    if (answer === null) return;
    if (answer.status !== 200) return client.counters.error(describeAnswer(answer));
  }
  client.counters.commits++;
}

async function clientLoop(client: Client, deadline: number): Promise<void> {
  for (let sequence = 0; sequence < sequencesPerClientMax && performance.now() < deadline; sequence++) {
    client.counters.sequences++;
    if (client.job.mode === 'hello') await helloSequence(client);
    else await transaction(client, sequence);
  }
}

async function phase(job: TxJob, agent: Agent, seconds: number): Promise<{ counters: Counters; seconds: number }> {
  const counters = new Counters();
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const clients = Array.from({ length: job.clients }, (_, index) => ({ job, agent, counters, index }));
  await Promise.all(clients.map((client) => clientLoop(client, deadline)));
  return { counters, seconds: (performance.now() - started) / 1000 };
}

function summarize(job: TxJob, counters: Counters, seconds: number): TxSummary {
  const decided = counters.commits + counters.aborts;
  return {
    mode: job.mode,
    clients: job.clients,
    durationSeconds: seconds,
    requests: counters.requests,
    requestsPerSecond: counters.requests / seconds,
    sequences: counters.sequences,
    commits: counters.commits,
    commitsPerSecond: counters.commits / seconds,
    aborts: counters.aborts,
    abortRate: decided === 0 ? 0 : counters.aborts / decided,
    errors: counters.errors,
    writesOutsideTransaction: counters.writesOutsideTransaction,
    statusCodes: counters.statusCodes,
    errorSamples: counters.errorSamples,
    requestLatencyMs: counters.requestLatency.summary(),
    txLatencyMs: counters.txLatency.summary(),
  };
}

serveOneJob<TxJob, TxSummary>(async (job) => {
  const agent = makeAgent(job.clients);
  try {
    if (job.warmupSeconds > 0) await phase(job, agent, job.warmupSeconds);
    const { counters, seconds } = await phase(job, agent, job.durationSeconds);
    return summarize(job, counters, seconds);
  } finally {
    agent.destroy();
  }
});

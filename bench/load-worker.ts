// Load generator child process: runs autocannon against one server and answers a compact summary over IPC.

import { createRequire } from 'node:module';
import { benchDoc, groupValue, rowKey } from './docs.js';
import { serveOneJob } from './worker-protocol.js';

/** What to send, per request; the functions that vary it are built here, since IPC cannot carry functions. */
export type LoadRequest =
  | { kind: 'hello' }
  /** The hello-world after about `micros` µs of handler work (the ceiling server's calibration route). */
  | { kind: 'work'; micros: number }
  /** A new key per request; with `idempotency`, each with an Idempotency-Key of its own. */
  | { kind: 'put'; table: string; authorization: string; idempotency?: boolean }
  | { kind: 'get'; table: string; rows: number; authorization: string }
  | { kind: 'query'; table: string; groups: number; authorization: string }
  /** begin → get → put → commit on a random preloaded key, per connection, over and over. */
  | { kind: 'tx'; table: string; rows: number; authorization: string }
  /** POST /v1/auth/token with a username and password: a login, one scrypt check each. */
  | { kind: 'login'; username: string; password: string };

export interface LoadJob {
  url: string;
  connections: number;
  durationSeconds: number;
  warmupSeconds: number;
  request: LoadRequest;
}

export interface LoadSummary {
  /** Successful (2xx) responses per second of the measured run. */
  okPerSecond: number;
  /** All completed responses per second, whatever their status. */
  responsesPerSecond: number;
  durationSeconds: number;
  completed: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  latencyMs: { p50: number; p90: number; p99: number; mean: number; max: number };
}

/** What the transaction sequence keeps per connection between its requests. */
interface TxContext {
  tx?: string;
  key?: string;
}

interface AutocannonRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  setupRequest?: (request: AutocannonRequest, context: TxContext) => AutocannonRequest;
  onResponse?: (status: number, body: string, context: TxContext) => void;
}

interface AutocannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
  statusCodeStats: Record<string, { count: number }>;
  latency: { p50: number; p90: number; p99: number; mean: number; max: number };
  requests: { total: number };
}

type Autocannon = (options: object, callback: (error: Error | null, result: AutocannonResult) => void) => unknown;

// autocannon ships CommonJS without type declarations; the shape used here is typed above.
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

function requestsFor(spec: LoadRequest): AutocannonRequest[] {
  switch (spec.kind) {
    case 'hello':
      return [{ method: 'GET', path: '/' }];
    case 'work':
      return [{ method: 'GET', path: `/work/${spec.micros}` }];
    case 'put':
      return [putRequest(spec.table, spec.authorization, spec.idempotency === true)];
    case 'get':
      return [getRequest(spec.table, spec.rows, spec.authorization)];
    case 'query':
      return [queryRequest(spec.table, spec.groups, spec.authorization)];
    case 'tx':
      return txRequests(spec.table, spec.rows, spec.authorization);
    case 'login':
      return [
        {
          method: 'POST',
          path: '/v1/auth/token',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ username: spec.username, password: spec.password }),
        },
      ];
  }
}

/**
 * The 4-request read-then-write transaction as an autocannon sequence: each connection runs the requests in
 * order, carrying the transaction id and the key in its context, so the load generator is the ceiling's own.
 */
function txRequests(table: string, rows: number, authorization: string): AutocannonRequest[] {
  const json = { authorization, 'content-type': 'application/json' };
  const inTx = (context: TxContext): Record<string, string> => ({ ...json, 'transaction-id': context.tx ?? 'none' });
  const body = JSON.stringify(benchDoc(1, 1));
  return [
    {
      method: 'POST',
      path: '/v1/transactions',
      headers: json,
      body: '{"isolation":"serializable"}',
      onResponse: (status, text, context) => {
        context.tx = status === 201 ? (JSON.parse(text) as { id: string }).id : undefined;
        context.key = rowKey(randomBelow(rows));
      },
    },
    { method: 'GET', setupRequest: (request, context) => ({ ...request, headers: inTx(context), path: `/v1/tables/${table}/rows/${context.key}` }) },
    {
      method: 'PUT',
      body,
      setupRequest: (request, context) => ({ ...request, headers: inTx(context), path: `/v1/tables/${table}/rows/${context.key}` }),
    },
    { method: 'POST', setupRequest: (request, context) => ({ ...request, headers: json, path: `/v1/transactions/${context.tx}/commit` }) },
  ];
}

/** A new key per request: a per-process prefix (unique per run) and a counter; the same for its Idempotency-Key. */
function putRequest(table: string, authorization: string, idempotency: boolean): AutocannonRequest {
  const prefix = `put-${process.pid}-${Date.now().toString(36)}`;
  const body = JSON.stringify(benchDoc(0, 1));
  const headers = { authorization, 'content-type': 'application/json' };
  let counter = 0;
  return {
    method: 'PUT',
    headers,
    body,
    setupRequest: (request) => {
      const key = `${prefix}-${counter++}`;
      return { ...request, path: `/v1/tables/${table}/rows/${key}`, ...(idempotency ? { headers: { ...headers, 'idempotency-key': key } } : {}) };
    },
  };
}

function getRequest(table: string, rows: number, authorization: string): AutocannonRequest {
  return {
    method: 'GET',
    headers: { authorization },
    setupRequest: (request) => ({ ...request, path: `/v1/tables/${table}/rows/${rowKey(randomBelow(rows))}` }),
  };
}

function queryRequest(table: string, groups: number, authorization: string): AutocannonRequest {
  return {
    method: 'POST',
    path: '/v1/query',
    headers: { authorization, 'content-type': 'application/json' },
    setupRequest: (request) => ({
      ...request,
      body: JSON.stringify({ table, where: { group: groupValue(randomBelow(groups), groups) } }),
    }),
  };
}

function randomBelow(n: number): number {
  return Math.floor(Math.random() * n);
}

function runAutocannon(job: LoadJob, durationSeconds: number): Promise<AutocannonResult> {
  const options = {
    url: job.url,
    connections: job.connections,
    duration: durationSeconds,
    pipelining: 1,
    timeout: 10,
    requests: requestsFor(job.request),
  };
  return new Promise((resolve, reject) => {
    autocannon(options, (error, result) => (error ? reject(error) : resolve(result)));
  });
}

function summarize(result: AutocannonResult): LoadSummary {
  const statusCodes: Record<string, number> = {};
  for (const [code, stats] of Object.entries(result.statusCodeStats)) statusCodes[code] = stats.count;
  const durationSeconds = result.duration > 0 ? result.duration : 1;
  const { p50, p90, p99, mean, max } = result.latency;
  return {
    okPerSecond: result['2xx'] / durationSeconds,
    responsesPerSecond: result.requests.total / durationSeconds,
    durationSeconds,
    completed: result.requests.total,
    ok: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes,
    latencyMs: { p50, p90, p99, mean, max },
  };
}

serveOneJob<LoadJob, LoadSummary>(async (job) => {
  // Warm the JIT of both sides (and the connections) first; that run's figures are discarded.
  if (job.warmupSeconds > 0) await runAutocannon(job, job.warmupSeconds);
  return summarize(await runAutocannon(job, job.durationSeconds));
});

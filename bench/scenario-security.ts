// Security scenarios: GET by a random key with Basic credentials and with a bearer token in the same run (the two
// should cost the same), the same GET with and without a row policy on the table (what a policy costs a read), and
// logins (POST /v1/auth/token) with the audit log on and off (what auditing costs).

import { join } from 'node:path';
import type { BenchContext } from './context.js';
import { driftCall, serverLogPath, startDriftServer, stopDriftServer, type DriftServer } from './drift-server.js';
import { describeAnswer, httpCall, isRecord } from './http.js';
import type { LoadRequest } from './load-worker.js';
import { measured, skipped, type ScenarioResult, type Target } from './report.js';
import { alternate, errorNotes, loadErrors, loadRun, rowsTable, type MeasuredLoad } from './scenarios-http.js';

export const securityTargets = {
  /** Bearer GETs per second over Basic GETs per second: within 5%. */
  bearerOverBasic: { on: 'ratio', op: '>=', limit: 0.95 },
  /** Reader GETs per second through a row policy over the same GETs without one: a policy costs at most 10%. */
  policyOverPlain: { on: 'ratio', op: '>=', limit: 0.9 },
  /** Logins per second with the audit log over without it: auditing costs under 5%. */
  auditedOverUnaudited: { on: 'ratio', op: '>=', limit: 0.95 },
} satisfies Record<string, Target>;

/** Runs per side, in the order A B B A (then again), so a steady drift in the machine's load falls on both alike. */
const alternations = 2;
/**
 * A policy costs a GET about a µs of the server's 50–90 (measured in-process), far below what the machine's load
 * swings between two runs: twice the runs of the bearer comparison.
 */
const policyAlternations = 4;
/** Logins vary more from run to run (a few hundred scrypt checks each): twice the runs. */
const loginAlternations = 4;
/** Logins are scrypt-bound (libuv's four threads on two cores): a few connections keep every thread busy. */
const loginConnections = 8;

/** The mean of the runs' rates, and of their server CPU per response where known. */
function combine(runs: MeasuredLoad[]): { okPerSecond: number; cpuMicros: number | null; errors: number; last: MeasuredLoad } {
  const cpu = runs.map((run) => run.serverCpuMicrosPerResponse);
  return {
    okPerSecond: runs.reduce((sum, run) => sum + run.okPerSecond, 0) / runs.length,
    cpuMicros: cpu.every((x) => x !== null) ? Math.round((cpu as number[]).reduce((a, b) => a + b, 0) / cpu.length) : null,
    errors: runs.reduce((sum, run) => sum + loadErrors(run), 0),
    last: runs.at(-1)!,
  };
}

async function issueToken(server: DriftServer, password: string): Promise<string> {
  const answer = await httpCall({ agent: server.agent, baseUrl: server.baseUrl, method: 'POST', path: '/v1/auth/token', body: { username: 'admin', password } });
  const token = isRecord(answer.body) ? answer.body['token'] : undefined;
  if (answer.status !== 200 || typeof token !== 'string') throw new Error(`POST /v1/auth/token: ${describeAnswer(answer)}`);
  return token;
}

/** GET of a random preloaded key, Basic and Bearer alternated on the same server and connections. */
export async function getBearerScenario(ctx: BenchContext, server: DriftServer): Promise<ScenarioResult> {
  const token = await issueToken(server, ctx.password);
  const request = (authorization: string): LoadRequest => ({ kind: 'get', table: rowsTable, rows: ctx.options.rows, authorization });
  const run = (authorization: string) => () => loadRun(ctx, server.baseUrl, ctx.options.connections, request(authorization), server.child.pid);
  const [basicRuns, bearerRuns] = await alternate(alternations, run(server.authorization), run(`Bearer ${token}`));
  const basic = combine(basicRuns);
  const bearer = combine(bearerRuns);
  return measured({
    name: `GET with a bearer token vs Basic (${ctx.options.connections} conn)`,
    value: bearer.okPerSecond,
    unit: 'req/s',
    ratio: bearer.okPerSecond / basic.okPerSecond,
    target: securityTargets.bearerOverBasic,
    latencyMs: bearer.last.latencyMs,
    errors: basic.errors + bearer.errors,
    notes: [
      `ratio = bearer / Basic, each the mean of ${alternations} runs (A B B A): Basic ${basic.okPerSecond.toFixed(0)} req/s, bearer ${bearer.okPerSecond.toFixed(0)} req/s`,
      ...(basic.cpuMicros !== null && bearer.cpuMicros !== null ? [`server CPU per response: Basic ${basic.cpuMicros} µs, bearer ${bearer.cpuMicros} µs`] : []),
      ...errorNotes('basic', basic.last),
      ...errorNotes('bearer', bearer.last),
    ],
    details: { basic: basicRuns, bearer: bearerRuns },
  });
}

/** A reader of the row table, and the policy the with-policy runs put on it: it admits every row, testing one field. */
const policyReader = { username: 'bench_reader', password: 'bench-reader-password' };
const policyPath = `/v1/tables/${rowsTable}/policies/bench_readers`;
const policy = { appliesTo: { users: [policyReader.username] }, read: { group: { $prefix: 'g' } } };

async function expectStatus(server: DriftServer, method: string, path: string, body: unknown, statuses: number[]): Promise<void> {
  const answer = await driftCall(server, method, path, body);
  if (!statuses.includes(answer.status)) throw new Error(`${method} ${path}: ${describeAnswer(answer)}`);
}

/**
 * GET of a random preloaded key by a reader (admins are never restricted), with and without a row policy on the
 * table: the same server, table, user and connections, the policy put before each with-policy run and deleted
 * before each plain one, runs A B B A A B B A.
 */
export async function getPolicyScenario(ctx: BenchContext, server: DriftServer): Promise<ScenarioResult> {
  await expectStatus(server, 'POST', '/v1/admin/users', { ...policyReader, roles: ['reader'] }, [201]);
  const authorization = `Basic ${Buffer.from(`${policyReader.username}:${policyReader.password}`).toString('base64')}`;
  const request: LoadRequest = { kind: 'get', table: rowsTable, rows: ctx.options.rows, authorization };
  const run = (withPolicy: boolean) => async () => {
    if (withPolicy) await expectStatus(server, 'PUT', policyPath, policy, [200, 201]);
    else await expectStatus(server, 'DELETE', policyPath, undefined, [204, 404]);
    return loadRun(ctx, server.baseUrl, ctx.options.connections, request, server.child.pid);
  };
  const [plainRuns, policyRuns] = await alternate(policyAlternations, run(false), run(true));
  await expectStatus(server, 'DELETE', policyPath, undefined, [204, 404]);
  const plain = combine(plainRuns);
  const withPolicy = combine(policyRuns);
  return measured({
    name: `GET through a row policy vs without (${ctx.options.connections} conn)`,
    value: withPolicy.okPerSecond,
    unit: 'req/s',
    ratio: withPolicy.okPerSecond / plain.okPerSecond,
    target: securityTargets.policyOverPlain,
    latencyMs: withPolicy.last.latencyMs,
    errors: plain.errors + withPolicy.errors,
    notes: [
      `ratio = with policy / without, each the mean of ${policyAlternations} runs (A B B A …): without ${plain.okPerSecond.toFixed(0)} req/s, with ${withPolicy.okPerSecond.toFixed(0)} req/s`,
      `policy read clause ${JSON.stringify(policy.read)} (admits every row); caller: a reader`,
      ...(plain.cpuMicros !== null && withPolicy.cpuMicros !== null ? [`server CPU per response: without ${plain.cpuMicros} µs, with ${withPolicy.cpuMicros} µs`] : []),
      ...errorNotes('without policy', plain.last),
      ...errorNotes('with policy', withPolicy.last),
    ],
    details: { withoutPolicy: plainRuns, withPolicy: policyRuns },
  });
}

/** Logins per second on two servers, one with the audit log and one with --audit-log off, runs alternated. */
export async function loginScenario(ctx: BenchContext): Promise<ScenarioResult> {
  const name = `login (POST /v1/auth/token) with vs without the audit log (${loginConnections} conn)`;
  // Every login counts against the client address's auth limit: lift it, or the bench measures 429s.
  const common = ['--auth-rate-limit-max', '1000000000'];
  const start = (label: string, extra: string[]) =>
    startDriftServer({
      dataDir: join(ctx.tmpRoot, `login-${label}`),
      logPath: serverLogPath(join(ctx.tmpRoot, 'logs'), `login-${label}`),
      password: ctx.password,
      readyTimeoutMs: 60_000,
      cpuProfDir: ctx.options.cpuProfDir,
      serveArgs: [...common, ...extra],
    }).then(({ server }) => server);
  let audited: DriftServer | null = null;
  let unaudited: DriftServer | null = null;
  try {
    audited = await start('audited', []);
    unaudited = await start('unaudited', ['--audit-log', 'off']);
    const request: LoadRequest = { kind: 'login', username: 'admin', password: ctx.password };
    const run = (server: DriftServer) => () => loadRun(ctx, server.baseUrl, loginConnections, request, server.child.pid);
    const [withRuns, withoutRuns] = await alternate(loginAlternations, run(audited), run(unaudited));
    const withAudit = combine(withRuns);
    const without = combine(withoutRuns);
    return measured({
      name,
      value: withAudit.okPerSecond,
      unit: 'req/s',
      ratio: withAudit.okPerSecond / without.okPerSecond,
      target: securityTargets.auditedOverUnaudited,
      latencyMs: withAudit.last.latencyMs,
      errors: withAudit.errors + without.errors,
      notes: [
        `ratio = with audit / without, each the mean of ${loginAlternations} runs (A B B A …): ${withAudit.okPerSecond.toFixed(1)} vs ${without.okPerSecond.toFixed(1)} logins/s`,
        ...(withAudit.cpuMicros !== null && without.cpuMicros !== null
          ? [`server CPU per login: ${withAudit.cpuMicros} µs with the audit log, ${without.cpuMicros} µs without (scrypt runs on libuv's threads, counted too)`]
          : []),
        ...errorNotes('with audit', withAudit.last),
        ...errorNotes('without audit', without.last),
      ],
      details: { withAudit: withRuns, withoutAudit: withoutRuns },
    });
  } catch (error) {
    return skipped(name, `a login server does not start or answer: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    if (audited !== null) await stopDriftServer(audited);
    if (unaudited !== null) await stopDriftServer(unaudited);
  }
}

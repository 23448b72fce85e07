// What metrics and the slow-query log cost (issue 12's target: GET and PUT with them on ≥ 0.97 × with them off):
// two DriftDB servers on the same data, one with --observability off, driven in alternating paired runs.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchContext } from './context.js';
import { serverLogPath, startDriftServer, stopDriftServer, type DriftServer } from './drift-server.js';
import type { LoadRequest } from './load-worker.js';
import { measured, skipped, type ScenarioResult, type Target } from './report.js';
import { createTable, errorNotes, loadErrors, loadRun, preloadScenario, putTable, rowsTable, type MeasuredLoad } from './scenarios-http.js';

export const observabilityTarget = { on: 'ratio', op: '>=', limit: 0.97 } satisfies Target;

/** Rows preloaded into each of the two servers; GET reads random ones. Fewer than the main GET row: two preloads. */
const observabilityRowsMax = 20_000;
/**
 * Paired runs per kind of request; the order of on and off alternates from one round to the next. Five, not three:
 * one pair of durable-PUT runs swings by ±5% on this machine (fsync timing, the other server's idle collections),
 * as much as the effect measured, while the instructions per PUT with and without observability differ by less than
 * their run-to-run spread (README, Performance).
 */
const rounds = 5;

type Mode = 'on' | 'off';

export async function observabilityScenarios(ctx: BenchContext): Promise<ScenarioResult[]> {
  const rows = Math.min(ctx.options.rows, observabilityRowsMax);
  const local: BenchContext = { ...ctx, options: { ...ctx.options, rows } };
  const servers = new Map<Mode, DriftServer>();
  try {
    for (const mode of ['on', 'off'] as const) {
      const dataDir = join(ctx.tmpRoot, `observability-${mode}`);
      mkdirSync(dataDir);
      const { server } = await startDriftServer({
        dataDir,
        logPath: serverLogPath(join(ctx.tmpRoot, 'logs'), `observability-${mode}`),
        password: ctx.password,
        readyTimeoutMs: 60_000,
        serveArgs: ['--observability', mode],
      });
      servers.set(mode, server);
      await preloadScenario(local, server);
      await createTable(server, { name: putTable, primaryKey: 'id', indexes: [] });
    }
  } catch (error) {
    for (const server of servers.values()) await stopDriftServer(server);
    const reason = `a server did not start or load: ${error instanceof Error ? error.message : String(error)}`;
    return [skipped('GET, observability on/off', reason), skipped('PUT, observability on/off', reason)];
  }
  try {
    const get = (server: DriftServer): LoadRequest => ({ kind: 'get', table: rowsTable, rows, authorization: server.authorization });
    const put = (server: DriftServer): LoadRequest => ({ kind: 'put', table: putTable, authorization: server.authorization });
    return [
      await pairedRuns(local, servers, `GET random key of ${rows}, observability on/off`, get),
      await pairedRuns(local, servers, 'durable PUT, new key, observability on/off', put),
    ];
  } finally {
    for (const server of servers.values()) await stopDriftServer(server);
  }
}

/** Alternating runs on the two servers; the ratio is on's total req/s over off's, each run as long as a main row's. */
async function pairedRuns(ctx: BenchContext, servers: Map<Mode, DriftServer>, name: string, request: (server: DriftServer) => LoadRequest): Promise<ScenarioResult> {
  const runs: Record<Mode, MeasuredLoad[]> = { on: [], off: [] };
  for (let round = 0; round < rounds; round++) {
    const order: Mode[] = round % 2 === 0 ? ['on', 'off'] : ['off', 'on'];
    for (const mode of order) {
      const server = servers.get(mode)!;
      runs[mode].push(await loadRun(ctx, server.baseUrl, ctx.options.connections, request(server), server.child.pid));
    }
  }
  const total = (mode: Mode) => runs[mode].reduce((sum, run) => sum + run.okPerSecond, 0) / rounds;
  const pairRatios = runs.on.map((on, i) => on.okPerSecond / runs.off[i]!.okPerSecond);
  const perRun = pairRatios.map((ratio) => ratio.toFixed(3)).join(' / ');
  const median = [...pairRatios].sort((a, b) => a - b)[Math.floor(rounds / 2)]!;
  const cpu = (mode: Mode) => runs[mode].map((run) => run.serverCpuMicrosPerResponse ?? '?').join('/');
  return measured({
    name: `${name} (${ctx.options.connections} conn)`,
    value: total('on'),
    unit: 'req/s',
    // The "ceiling" of this row is the same server with --observability off.
    ceiling: total('off'),
    target: observabilityTarget,
    latencyMs: runs.on.at(-1)!.latencyMs,
    errors: runs.on.reduce((sum, run) => sum + loadErrors(run), 0),
    notes: [
      `ratio to the same server with --observability off (not the hello-world), ${rounds} alternating pairs; per pair: ${perRun} (median ${median.toFixed(3)})`,
      `server CPU per response (µs), on: ${cpu('on')}, off: ${cpu('off')}`,
      ...runs.on.flatMap((run) => errorNotes('on', run)),
      ...runs.off.flatMap((run) => errorNotes('off', run)),
    ],
    details: { on: runs.on, off: runs.off },
  });
}

// The SQLite peer (sqlite-server.ts): the spec floor's requests and HTTP work with SQLite for storage, so a reader can
// set DriftDB beside the database most people would otherwise embed. Each row is its ratio to the hello-world run
// right before it, and also to the floor's row of the same kind from this run. Skipped when better-sqlite3, an
// optional dependency, is not installed.

import { join } from 'node:path';
import type { BenchContext } from './context.js';
import { workerScripts } from './context.js';
import { basicAuth } from './http.js';
import { startService, stopChild } from './procs.js';
import { skipped, type ScenarioResult } from './report.js';
import { checkPeer, peerRequests, peerRowName, peerRows, type Peer } from './scenario-floor.js';
import { loadSqlite } from './sqlite-module.js';
import type { SqliteReady } from './sqlite-server.js';

const sqliteLabel = 'sqlite peer';

/** `earlier` holds this run's results so far: the floor's rows, if they ran, give each SQLite row its floor ratio. */
export async function sqliteScenarios(ctx: BenchContext, earlier: readonly ScenarioResult[]): Promise<ScenarioResult[]> {
  const skipAll = (reason: string): ScenarioResult[] => peerRequests.map((kind) => skipped(peerRowName(sqliteLabel, kind, ctx), reason));
  const loaded = loadSqlite();
  if ('missing' in loaded) return skipAll(loaded.missing);
  if (ctx.ceilingUrl === null) return skipAll('the ceiling server did not start');
  const authorization = basicAuth('admin', ctx.password);
  const args = [String(ctx.options.rows), authorization, join(ctx.tmpRoot, 'sqlite-peer')];
  const server = await startService<SqliteReady>(workerScripts.sqlite, 120_000, args);
  try {
    const { ready } = server;
    const peer: Peer = { id: 'sqlite', label: sqliteLabel, url: `https://127.0.0.1:${ready.port}`, pid: server.child.pid ?? null, authorization };
    await checkPeer(peer);
    const setup = `SQLite ${ready.sqliteVersion} (better-sqlite3), journal_mode=${ready.journalMode}, synchronous=${ready.synchronous === 2 ? 'FULL' : ready.synchronous}`;
    const results = await peerRows(ctx, peer);
    for (const result of results) {
      const floor = floorComparison(result, earlier);
      result.notes.push(floor.note);
      if (floor.quotient !== null) result.details = { ...result.details, ratioToFloor: floor.quotient };
      if (result.details?.['kind'] === 'query') {
        result.notes.push(`query plan: ${ready.queryPlan.join('; ')}`);
        if (!ready.queryPlan.some((step) => step.includes('USING INDEX'))) result.notes.push('the query does not use the group index: its figure is a scan');
      }
      if (result.details?.['kind'] === 'put') result.notes.push(`${setup}; the writes of one event-loop turn share one transaction (one WAL fsync)`);
    }
    return results;
  } finally {
    await stopChild(server.child);
  }
}

/** The row beside the floor's row of the same kind: both ratios to their own ceiling runs, and their quotient. */
function floorComparison(result: ScenarioResult, earlier: readonly ScenarioResult[]): { note: string; quotient: number | null } {
  const kind = result.details?.['kind'];
  const floor = earlier.find((r) => r.status === 'measured' && r.details?.['peer'] === 'floor' && r.details['kind'] === kind);
  if (floor?.ratio === undefined || result.ratio === undefined) return { note: 'no spec floor row of this kind in this run to compare with', quotient: null };
  const quotient = result.ratio / floor.ratio;
  const note = `${quotient.toFixed(2)} × the spec floor (ratio ${result.ratio.toFixed(3)} against the floor's ${floor.ratio.toFixed(3)}; ${Math.round(result.value ?? 0)} against ${Math.round(floor.value ?? 0)} req/s)`;
  return { note, quotient };
}

// `npm run bench`: starts the ceiling and the real DriftDB server, runs the selected scenarios in order,
// prints a table and writes bench/results/bench-<timestamp>.json. Every child and temp dir is removed at the end.

import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CeilingReady } from './ceiling-server.js';
import { workerScripts, type BenchContext } from './context.js';
import { logTail, serverLogPath, startDriftServer, stopDriftServer, type DriftServer } from './drift-server.js';
import { parseOptions, usage, UsageError, type BenchOptions, type ScenarioName } from './options.js';
import { cleanUpSync, installCleanupHandlers, keepTempDir, makeTempDir, removeTempDir, startService, stopChild } from './procs.js';
import { failed, renderTable, skipped, writeReport, type ScenarioResult } from './report.js';
import { adminPageScenarios } from './scenario-admin-page.js';
import { calibrationScenarios } from './scenario-calibration.js';
import { clusterScenarios } from './scenario-cluster.js';
import { observabilityScenarios } from './scenario-observability.js';
import { floorScenarios } from './scenario-floor.js';
import { historyScenarios } from './scenario-history.js';
import { memoryGuardScenario } from './scenario-memory-guard.js';
import { restartScenarios } from './scenario-restart.js';
import { sqliteScenarios } from './scenario-sqlite.js';
import { feedScenarios } from './scenario-feed.js';
import { getBearerScenario, getPolicyScenario, loginScenario } from './scenario-security.js';
import { ceilingScenario, getScenario, preloadScenario, putScenario, queryScenario, transactionsMissing, txScenario } from './scenarios-http.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const resultsDir = join(repoRoot, 'bench', 'results');
const httpScenarios: readonly ScenarioName[] = ['put', 'get', 'get-bearer', 'get-policy', 'query', 'tx-distinct', 'tx-hot'];

function log(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

/** Runs one scenario; a throw becomes a 'failed' row instead of ending the run. */
async function attempt(name: string, results: ScenarioResult[], fn: () => Promise<ScenarioResult | ScenarioResult[]>): Promise<void> {
  log(`${name}…`);
  try {
    const out = await fn();
    results.push(...(Array.isArray(out) ? out : [out]));
  } catch (error) {
    log(`${name} failed: ${error instanceof Error ? error.message : String(error)}`);
    results.push(failed(name, error));
  }
}

async function runHttpGroup(ctx: BenchContext, results: ScenarioResult[]): Promise<void> {
  const selected = httpScenarios.filter((name) => ctx.options.scenarios.has(name));
  if (selected.length === 0) return;
  const dataDir = join(ctx.tmpRoot, 'http-data');
  mkdirSync(dataDir);
  let server: DriftServer;
  try {
    log('starting the DriftDB server');
    ({ server } = await startDriftServer({ dataDir, logPath: serverLogPath(join(ctx.tmpRoot, 'logs'), 'http'), password: ctx.password, readyTimeoutMs: 60_000, cpuProfDir: ctx.options.cpuProfDir }));
  } catch (error) {
    const reason = `the DriftDB server does not start: ${error instanceof Error ? error.message : String(error)}`;
    for (const name of selected) results.push(skipped(name, reason));
    return;
  }
  try {
    await runHttpScenarios(ctx, server, selected, results);
  } finally {
    const logPath = server.logPath;
    if (!(await stopDriftServer(server))) {
      results.push(failed('server shutdown', new Error(`SIGTERM did not stop the server; killed. Log tail: ${logTail(logPath)}`)));
    }
  }
}

async function runHttpScenarios(ctx: BenchContext, server: DriftServer, selected: ScenarioName[], results: ScenarioResult[]): Promise<void> {
  const has = (name: ScenarioName): boolean => selected.includes(name);
  if (has('put')) await attempt('put', results, () => putScenario(ctx, server));
  if (!(has('get') || has('get-bearer') || has('get-policy') || has('query') || has('tx-distinct') || has('tx-hot'))) return;
  await attempt('preload', results, () => preloadScenario(ctx, server));
  if (results[results.length - 1]?.status !== 'measured') {
    for (const name of selected.filter((n) => n !== 'put')) results.push(skipped(name, 'the preload failed'));
    return;
  }
  if (has('get')) await attempt('get', results, () => getScenario(ctx, server));
  if (has('get-bearer')) await attempt('get-bearer', results, () => getBearerScenario(ctx, server));
  if (has('get-policy')) await attempt('get-policy', results, () => getPolicyScenario(ctx, server));
  if (has('query')) await attempt('query', results, () => queryScenario(ctx, server));
  const txModes = (['distinct', 'hot'] as const).filter((mode) => has(`tx-${mode}`));
  if (txModes.length === 0) return;
  const missing = await transactionsMissing(server).catch((error: unknown) => `probe failed: ${String(error)}`);
  for (const mode of txModes) {
    if (missing !== null) results.push(skipped(`tx-${mode}`, missing));
    else await attempt(`tx-${mode}`, results, () => txScenario(ctx, server, mode));
  }
}

async function runAll(options: BenchOptions): Promise<ScenarioResult[]> {
  const results: ScenarioResult[] = [];
  const tmpRoot = makeTempDir('run');
  mkdirSync(join(tmpRoot, 'logs'));
  const ceilingStart = await startService<CeilingReady>(workerScripts.ceiling, 60_000).catch((error: unknown) => {
    log(`the ceiling server did not start: ${String(error)}`);
    return null;
  });
  const ctx: BenchContext = {
    options,
    ceilingUrl: ceilingStart === null ? null : `https://127.0.0.1:${ceilingStart.ready.port}`,
    ceilingPid: ceilingStart?.child.pid ?? null,
    ceilingWorkIterationsPerMicro: ceilingStart?.ready.workIterationsPerMicro ?? null,
    tmpRoot,
    password: randomBytes(18).toString('base64url'),
  };
  try {
    if (options.scenarios.has('ceiling')) await attempt('ceiling', results, () => ceilingScenario(ctx));
    // Before the DriftDB server starts, so nothing but the ceiling and its load generator runs.
    if (options.scenarios.has('calibration')) await attempt('calibration', results, () => calibrationScenarios(ctx));
    if (options.scenarios.has('floor')) await attempt('floor', results, () => floorScenarios(ctx));
    if (options.scenarios.has('sqlite')) await attempt('sqlite', results, () => sqliteScenarios(ctx, results));
    await runHttpGroup(ctx, results);
    if (options.scenarios.has('observability')) await attempt('observability', results, () => observabilityScenarios(ctx));
    if (options.scenarios.has('restart')) await attempt('restart', results, () => restartScenarios(ctx));
    if (options.scenarios.has('login')) await attempt('login', results, () => loginScenario(ctx));
    // `feed` has the idempotency row among its own; `idempotency` alone runs just that row.
    if (options.scenarios.has('feed')) await attempt('feed', results, () => feedScenarios(ctx, { subscribers: true }));
    else if (options.scenarios.has('idempotency')) await attempt('idempotency', results, () => feedScenarios(ctx, { subscribers: false }));
    if (options.scenarios.has('memory-guard')) await attempt('memory-guard', results, () => memoryGuardScenario(ctx));
    if (options.scenarios.has('admin-page')) await attempt('admin-page', results, () => adminPageScenarios(ctx));
    if (options.scenarios.has('cluster')) await attempt('cluster', results, () => clusterScenarios(ctx));
    // Last: at its default scale it runs longer than everything before it together.
    if (options.scenarios.has('history')) await attempt('history', results, () => historyScenarios(ctx));
  } finally {
    if (ceilingStart !== null) await stopChild(ceilingStart.child);
    if (options.keepTemp) {
      keepTempDir(tmpRoot);
      log(`kept ${tmpRoot}`);
    } else {
      removeTempDir(tmpRoot);
    }
  }
  return results;
}

async function main(): Promise<void> {
  let options: BenchOptions;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    if (error.message !== '') process.stderr.write(`${error.message}\n`);
    process.stderr.write(`${usage}\n`);
    process.exit(error.message === '' ? 0 : 2);
  }
  installCleanupHandlers();
  const startedAt = new Date();
  const loadAverageAtStart = loadavg();
  warnIfBusy('at start', loadAverageAtStart[0]!);
  const results = await runAll(options);
  process.stdout.write(`\n${renderTable(results)}\n`);
  warnIfBusy('at the end', loadavg()[0]!);
  const file = writeReport({ repoRoot, resultsDir, options, startedAt, loadAverageAtStart, results });
  process.stdout.write(`\nreport: ${file}\n`);
}

/** Figures from a machine busy with other work swing widely; say so next to them. */
function warnIfBusy(when: string, load1: number): void {
  const cpuCount = cpus().length;
  if (load1 > cpuCount / 2) process.stdout.write(`warning: load average ${load1.toFixed(1)} on ${cpuCount} CPUs ${when}: other work competes with the benchmark\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  cleanUpSync();
  process.exit(1);
});

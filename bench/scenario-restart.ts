// Restart and memory scenarios: a large log generated in-process, then the real server's time to /readyz
// without and with a checkpoint, and its RSS once it holds every row.

import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { workerScripts, type BenchContext } from './context.js';
import { driftCall, serverLogPath, startDriftServer, stopDriftServer, type DriftServer } from './drift-server.js';
import type { GenJob, GenSummary } from './gen-log.js';
import { describeAnswer } from './http.js';
import { runWorker, vmRssBytes } from './procs.js';
import { MiB, failed, measured, skipped, type ScenarioResult, type Target } from './report.js';
import { checkRowCount } from './scenarios-http.js';

const bigTable = 'bench_big';
/** The events the targets of issue #2 are stated for. */
const targetEventsCount = 1_000_000;
/** Puts in flight while generating: enough for group commit to share each fsync widely. */
const generateInFlight = 1000;
/** A restart, a checkpoint or a generator that takes longer than this is declared hung. */
const restartTimeoutMs = 10 * 60_000;
const checkpointTimeoutMs = 10 * 60_000;
/**
 * RSS is read this long after /readyz or the end of a load, with the server idle: its heap reclaimer (engine/
 * heap-reclaimer.ts) collects after 0.5 s of idleness, and at 20M versions that collection takes 1.5-2 s on this
 * machine, so an earlier reading lands in the middle of it.
 */
export const rssSettleMs = 8_000;

export const restartTargets = {
  withoutCheckpoint: { on: 'value', op: '<=', limit: 10 },
  withCheckpoint: { on: 'value', op: '<=', limit: 2 },
  rssMiB: { on: 'value', op: '<=', limit: 1536 },
} satisfies Record<string, Target>;

export interface Restart {
  readySeconds: number;
  /** The engine's own account of its recovery, from the server log line with msg "recovered", if there is one. */
  engineRecovery: Record<string, unknown> | null;
  rssAtReadyMiB: number | null;
  rssSettledMiB: number | null;
  notes: string[];
}

export function rssMiB(server: DriftServer): number | null {
  const bytes = server.child.pid === undefined ? null : vmRssBytes(server.child.pid);
  return bytes === null ? null : Math.round(bytes / MiB);
}

function checkpointFiles(dataDir: string): string[] {
  const dir = join(dataDir, 'checkpoints');
  return existsSync(dir) ? readdirSync(dir) : [];
}

export interface RestartInput {
  dataDir: string;
  /** Names the server's log file. */
  label: string;
  /** The table whose rowCount the restarted server must report. */
  table: string;
  rows: number;
  serveArgs?: readonly string[];
}

/** Starts the server on the data dir, times it to /readyz, reads its RSS, checks the row count; leaves it running. */
export async function timedRestart(ctx: BenchContext, input: RestartInput): Promise<{ server: DriftServer; restart: Restart }> {
  const logPath = serverLogPath(join(ctx.tmpRoot, 'logs'), input.label);
  const { server, readySeconds } = await startDriftServer({
    dataDir: input.dataDir,
    logPath,
    password: ctx.password,
    readyTimeoutMs: restartTimeoutMs,
    cpuProfDir: ctx.options.cpuProfDir,
    ...(input.serveArgs !== undefined ? { serveArgs: input.serveArgs } : {}),
  });
  try {
    const rssAtReadyMiB = rssMiB(server);
    await sleep(rssSettleMs);
    const rssSettledMiB = rssMiB(server);
    const notes = await checkRowCount(server, input.rows, input.table);
    const engineRecovery = recoveryLine(logPath);
    if (engineRecovery !== null) notes.push(`engine log: ${JSON.stringify(engineRecovery)}`);
    return { server, restart: { readySeconds, engineRecovery, rssAtReadyMiB, rssSettledMiB, notes } };
  } catch (error) {
    await stopDriftServer(server);
    throw error;
  }
}

function restart(ctx: BenchContext, dataDir: string, label: string): Promise<{ server: DriftServer; restart: Restart }> {
  return timedRestart(ctx, { dataDir, label, table: bigTable, rows: ctx.options.restartEvents });
}

/** The figures of the server's "recovered" log line (replayed records, ms), to split engine time from process start. */
function recoveryLine(logPath: string): Record<string, unknown> | null {
  let text: string;
  try {
    text = readFileSync(logPath, 'utf8');
  } catch {
    return null;
  }
  for (const line of text.split('\n')) {
    if (!line.includes('"recovered"')) continue;
    try {
      const entry = JSON.parse(line) as Record<string, unknown>;
      if (entry['msg'] !== 'recovered') continue;
      const { time: _time, level: _level, pid: _pid, hostname: _hostname, msg: _msg, ...figures } = entry;
      return figures;
    } catch {
      continue;
    }
  }
  return null;
}

/**
 * The first start of an empty data dir creates the admin user and the certificate, as a real deployment would;
 * a second start of that still-empty dir shows the fixed cost of a start, which no log size changes.
 */
async function bootstrap(ctx: BenchContext, dataDir: string): Promise<{ problem: string | null; note: string }> {
  const seconds: number[] = [];
  try {
    for (const label of ['restart-bootstrap', 'restart-empty']) {
      const logPath = serverLogPath(join(ctx.tmpRoot, 'logs'), label);
      const { server, readySeconds } = await startDriftServer({ dataDir, logPath, password: ctx.password, readyTimeoutMs: 60_000, cpuProfDir: ctx.options.cpuProfDir });
      seconds.push(readySeconds);
      await stopDriftServer(server);
    }
    return { problem: null, note: `fixed start cost: ${seconds[0]!.toFixed(2)} s to /readyz on a new data dir, ${seconds[1]!.toFixed(2)} s on the empty bootstrapped one` };
  } catch (error) {
    return { problem: error instanceof Error ? error.message : String(error), note: '' };
  }
}

async function generate(dataDir: string, events: number): Promise<GenSummary> {
  const job: GenJob = { kind: 'generate', dataDir, table: bigTable, indexes: ['group', 'city'], events, inFlight: generateInFlight };
  // Generous: even a slow engine at 500 puts/s finishes within the bound.
  return runWorker<GenJob, GenSummary>(workerScripts.gen, job, 120_000 + events * 2);
}

/** POST /v1/admin/checkpoint; if the route is not usable, the engine writes it in-process after the server stops. */
export async function checkpointOverHttp(server: DriftServer): Promise<{ seconds: number; note: string } | string> {
  const started = performance.now();
  const answer = await driftCall(server, 'POST', '/v1/admin/checkpoint', undefined, checkpointTimeoutMs);
  const seconds = (performance.now() - started) / 1000;
  if (answer.status === 200) return { seconds, note: `POST /v1/admin/checkpoint took ${seconds.toFixed(2)} s` };
  return describeAnswer(answer);
}

export async function restartScenarios(ctx: BenchContext): Promise<ScenarioResult[]> {
  const events = ctx.options.restartEvents;
  const dataDir = join(ctx.tmpRoot, 'restart-data');
  mkdirSync(dataDir, { recursive: true });
  const names = {
    generate: `generate ${events} events in-process`,
    without: `restart, ${events} events, no checkpoint`,
    with: `restart, ${events} events, checkpoint`,
    rss: `RSS, server holding ${events} rows, 2 indexes`,
  };
  const { problem: serverProblem, note: startNote } = await bootstrap(ctx, dataDir);
  const results: ScenarioResult[] = [];
  let gen: GenSummary;
  try {
    gen = await generate(dataDir, events);
  } catch (error) {
    return [failed(names.generate, error), ...[names.without, names.with, names.rss].map((n) => skipped(n, 'no data dir'))];
  }
  results.push(
    measured({
      name: names.generate,
      value: gen.seconds,
      unit: 's',
      notes: [`${Math.round(events / gen.seconds)} puts/s with ${generateInFlight} in flight; generator RSS ${Math.round(gen.rssBytes / MiB)} MiB`],
      details: { generator: gen },
    }),
  );
  if (serverProblem !== null) {
    return [...results, ...[names.without, names.with, names.rss].map((n) => skipped(n, `the server does not start: ${serverProblem}`))];
  }
  try {
    const restarts = await measureRestarts(ctx, dataDir, names);
    restarts[0]?.notes.push(startNote);
    return [...results, ...restarts];
  } catch (error) {
    return [...results, failed(`restart of ${events} events`, error)];
  }
}

async function measureRestarts(ctx: BenchContext, dataDir: string, names: { without: string; with: string; rss: string }): Promise<ScenarioResult[]> {
  const scaleNote = ctx.options.restartEvents === targetEventsCount ? [] : [`the target is stated for ${targetEventsCount} events`];
  const before = checkpointFiles(dataDir);
  const first = await restart(ctx, dataDir, 'restart-no-checkpoint');
  let checkpoint: Awaited<ReturnType<typeof checkpointOverHttp>>;
  let graceful: boolean;
  try {
    checkpoint = await checkpointOverHttp(first.server);
  } finally {
    graceful = await stopDriftServer(first.server);
  }
  const results: ScenarioResult[] = [];
  results.push(
    measured({
      name: names.without,
      value: first.restart.readySeconds,
      unit: 's',
      target: restartTargets.withoutCheckpoint,
      notes: [...scaleNote, ...first.restart.notes, ...(before.length > 0 ? [`checkpoints existed before: ${before.join(', ')}`] : []), ...(graceful ? [] : ['SIGTERM did not stop the server; it was killed'])],
      details: { restart: first.restart },
    }),
  );
  const checkpointNotes = await ensureCheckpoint(dataDir, checkpoint);
  const second = await restart(ctx, dataDir, 'restart-checkpoint');
  await stopDriftServer(second.server);
  results.push(
    measured({
      name: names.with,
      value: second.restart.readySeconds,
      unit: 's',
      target: restartTargets.withCheckpoint,
      notes: [...scaleNote, ...checkpointNotes, ...second.restart.notes],
      details: { restart: second.restart },
    }),
  );
  results.push(rssResult(names.rss, first.restart, second.restart, scaleNote));
  return results;
}

/** When the HTTP checkpoint failed (its error text), the engine writes one in-process; answers notes on what happened. */
async function ensureCheckpoint(dataDir: string, overHttp: { note: string } | string): Promise<string[]> {
  const notes: string[] = [];
  if (typeof overHttp === 'string') {
    const inProcess = await runWorker<GenJob, GenSummary>(workerScripts.gen, { kind: 'checkpoint', dataDir }, checkpointTimeoutMs);
    notes.push(`POST /v1/admin/checkpoint unusable (${overHttp.slice(0, 120)}); checkpoint written in-process at seq ${inProcess.checkpointSeq} in ${inProcess.seconds.toFixed(2)} s`);
  } else {
    notes.push(overHttp.note);
  }
  notes.push(`checkpoint files: ${checkpointFiles(dataDir).join(', ') || '(none!)'}`);
  return notes;
}

function rssResult(name: string, first: Restart, second: Restart, scaleNote: string[]): ScenarioResult {
  const samples = [first.rssSettledMiB, second.rssSettledMiB].filter((x): x is number => x !== null);
  if (samples.length === 0) return skipped(name, 'VmRSS could not be read from /proc');
  return measured({
    name,
    value: Math.max(...samples),
    unit: 'MiB',
    target: restartTargets.rssMiB,
    notes: [
      ...scaleNote,
      `VmRSS ${rssSettleMs / 1000} s after /readyz: ${first.rssSettledMiB} MiB after log replay, ${second.rssSettledMiB} MiB after checkpoint load (at /readyz: ${first.rssAtReadyMiB} / ${second.rssAtReadyMiB} MiB); the larger is shown`,
    ],
  });
}

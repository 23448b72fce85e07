#!/usr/bin/env node
// The `driftdb` command: `serve` (listen first, then recover the log, then serve data) and `doctor` (check a data
// dir offline). It is the only place that reads argv and the environment, listens, and exits.

import type { AddressInfo } from 'node:net';
import v8 from 'node:v8';
import type { FastifyInstance } from 'fastify';
import { ConfigError, formatFlagsHelp, loadConfig, type Config } from './config/index.js';
import { CorruptLogError, doctor, openDatabase, type Database } from './engine/index.js';
import { DriftError } from './errors.js';
import { MiB } from './limits.js';
import { createLogger, type Logger } from './observability/logger.js';
import { formatMiB, Progress } from './observability/progress.js';
import { createObservability, type Observability } from './observability/observability.js';
import { DataDirLockedError, lockDataDir } from './service/data-dir-lock.js';
import { exportImportUsage, runExport, runImport } from './cli-transfer.js';
import { buildServer } from './server.js';

const usage = `Usage:
  driftdb serve [flags]           serve the HTTP API (driftdb serve --help lists the flags)
  driftdb doctor --data-dir DIR   check a data dir offline: exit 0 healthy, 1 corrupt
  driftdb export --data-dir DIR --table T [--as-of SEQ] [--history] [--out FILE]
                                  write a table as NDJSON (offline)
  driftdb import --data-dir DIR --table T [--file FILE] [--history] [--primary-key FIELD] [--batch-rows N]
                                  load NDJSON into a table in batched transactions (offline)
  driftdb --help`;

/** An in-flight shutdown gets this long to finish its requests and close the log before the process gives up. */
const shutdownGraceMs = 15_000;

function fail(message: string, code: number): number {
  process.stderr.write(`driftdb: ${message}\n`);
  return code;
}

/** Holds the database once recovery has opened it; until then (and once stopping) every use answers 503. */
class DatabaseHolder {
  private database: Database | null = null;
  private stopping = false;

  readonly get = (): Database => {
    if (this.database !== null && !this.stopping) return this.database;
    const detail = this.stopping ? 'the server is shutting down' : 'recovering the log; retry shortly';
    throw new DriftError('unavailable', detail, { retryAfterSeconds: 1 });
  };

  open(database: Database): void {
    this.database = database;
  }

  /** Takes the database out of service and answers it (or null if it never opened) for closing. */
  stop(): Database | null {
    this.stopping = true;
    return this.database;
  }
}

function urlOf(app: FastifyInstance, config: Config): string {
  const address = app.server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `${config.tls === 'off' ? 'http' : 'https'}://${host}:${address.port}`;
}

async function serve(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`Usage: driftdb serve [flags]\n\nFlags (each also an environment variable; flags win):\n${formatFlagsHelp()}\n`);
    return 0;
  }
  const config = loadConfig(args, process.env);
  lockDataDir(config.dataDir, 'serve', { createDir: true });
  servingHeapPolicy();
  const logger = createLogger(config);
  const holder = new DatabaseHolder();
  const observability = createObservability(config, { logger, db: holder.get });
  const app = await buildServer(config, { db: holder.get, logger, observability });
  const opening = openAfterListen(app, { config, logger, holder, observability });
  installSignalHandlers(app, logger, holder, opening);
  return opening.then((code) => code ?? new Promise<number>(() => {}));
}

/**
 * Listens first, so /healthz answers and /readyz says 503 during recovery, then opens the database.
 * Resolves with an exit code only when the process must stop; a serving process never resolves it.
 */
async function openAfterListen(
  app: FastifyInstance,
  deps: { config: Config; logger: Logger; holder: DatabaseHolder; observability: Observability },
): Promise<number | null> {
  const { config, logger, holder } = deps;
  await app.listen({ host: config.host, port: config.port });
  // The "listening" line is part of the contract (scripts read the URL from it): logged whatever --log-level says.
  logger.child({}, { level: 'info' }).info({ url: urlOf(app, config) }, 'listening');
  let database: Database;
  try {
    database = await openDatabase({
      dataDir: config.dataDir,
      logger,
      lockTimeoutMs: config.lockTimeoutMs,
      checkpointIntervalBytes: config.checkpointIntervalMb * MiB,
      ...(deps.observability.engineObserver ? { observer: deps.observability.engineObserver } : {}),
    });
  } catch (error) {
    if (error instanceof CorruptLogError) {
      logger.error({ file: error.file, offset: error.offset, reason: error.reason }, 'corrupt log');
      return fail(
        `corrupt log record in ${error.file} at offset ${error.offset}: ${error.reason}. ` +
          `Not serving; run "driftdb doctor --data-dir ${config.dataDir}" and restore from a backup.`,
        1,
      );
    }
    throw error;
  }
  holder.open(database);
  logger.info({ seq: database.durableSeq }, 'ready');
  return null;
}

/**
 * V8 allocates objects straight into the old generation from an allocation site whose objects mostly survived
 * (pretenuring). A burst of slow concurrent requests (a bulk load of batches) taught it to do that for request
 * objects for good, after which every scavenge took 4-5 ms instead of under one and a GET 20% more CPU. Set before
 * anything is served or recovered; restarts of a million events measured the same without it.
 */
function servingHeapPolicy(): void {
  v8.setFlagsFromString('--no-allocation-site-pretenuring');
}

/**
 * SIGTERM/SIGINT: stop accepting, let in-flight requests finish, close the database (rolls back, flushes), exit 0.
 */
function installSignalHandlers(app: FastifyInstance, logger: Logger, holder: DatabaseHolder, opening: Promise<unknown>): void {
  let stopping = false;
  const stop = async (signal: NodeJS.Signals): Promise<void> => {
    if (stopping) {
      // A second signal means the operator will not wait: leave now, as a crash would (the log stays consistent).
      logger.warn({ signal }, 'second signal; exiting without finishing');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'stopping');
    setTimeout(() => {
      logger.error({ graceMs: shutdownGraceMs }, 'shutdown took too long; exiting');
      process.exit(1);
    }, shutdownGraceMs).unref();
    // server.close() drops the connections idle at that moment; a connection whose request finishes later would
    // otherwise sit in keep-alive and hold the shutdown, so keep sweeping until close completes.
    const sweep = setInterval(() => app.server.closeIdleConnections(), 50);
    await app.close();
    clearInterval(sweep);
    // A signal during recovery waits for it: the log is closed cleanly rather than cut mid-replay.
    await opening.catch(() => undefined);
    await holder.stop()?.close();
    logger.info({}, 'stopped');
    process.exit(0);
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      stop(signal).catch((error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      });
    });
  }
}

async function runDoctor(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write('Usage: driftdb doctor --data-dir DIR\n\nChecks the log and checkpoints offline, changing nothing: exit 0 healthy, 1 corrupt.\n');
    return 0;
  }
  const config = loadConfig(args, process.env, { only: ['dataDir'] });
  // Taken even though doctor only reads: a server appending to the log would show its write in flight as a torn tail.
  // (A data dir that does not exist is not created: the report says so.)
  const lock = lockDataDir(config.dataDir, 'doctor', { createDir: false });
  const progress = new Progress({ stream: process.stderr });
  const report = await doctor({
    dataDir: config.dataDir,
    onProgress: (p) => progress.update(() => `doctor: ${formatMiB(p.bytesRead)} of ${formatMiB(p.bytesTotal)} read, ${p.records} records`),
  });
  progress.end();
  lock?.release();
  const lines = [
    `driftdb doctor ${config.dataDir}`,
    `  segments ${report.segments}, records ${report.records}, last seq ${report.lastSeq}`,
    `  checkpoints ${report.checkpoints}, newest valid at seq ${report.checkpointSeq ?? 'none'}`,
    ...report.problems.map((p) => `  ${p.severity.padEnd(7)} ${p.file} at offset ${p.offset}: ${p.reason}`),
    report.healthy ? 'healthy' : 'CORRUPT: the server would refuse to start on this data dir',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  return report.healthy ? 0 : 1;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  try {
    if (command === 'serve') return await serve(rest);
    if (command === 'doctor') return await runDoctor(rest);
    if (command === 'export') return await runExport(rest);
    if (command === 'import') return await runImport(rest);
  } catch (error) {
    if (error instanceof ConfigError) return fail(`${error.message}${command === 'export' || command === 'import' ? `\n${exportImportUsage}` : ''}`, 2);
    if (error instanceof DataDirLockedError) return fail(error.message, 1);
    throw error;
  }
  return fail(command === undefined ? `a command is needed\n${usage}` : `unknown command "${command}"\n${usage}`, 2);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`driftdb: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);

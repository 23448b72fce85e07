#!/usr/bin/env node
// The `driftdb` command: `serve` (listen first, then recover the log, then serve data), `doctor` (check a data dir
// offline) and `audit verify` (check the audit chain offline). It is the only place that reads argv and the
// environment, listens, and exits.

import { spawn } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import v8 from 'node:v8';
import type { FastifyInstance } from 'fastify';
import { Cluster } from './cluster/cluster.js';
import { ConfigError, formatFlagsHelp, loadConfig, type Config } from './config/index.js';
import { CorruptLogError, doctor, HeapReclaimer, openDatabase, type Database, type HeapReclaim } from './engine/index.js';
import { DriftError } from './errors.js';
import { MiB } from './limits.js';
import { createLogger, type Logger } from './observability/logger.js';
import { verifyAuditOffline } from './security/audit-offline.js';
import { loadAuditHmacKey, Security } from './security/security.js';
import { formatMiB, Progress } from './observability/progress.js';
import { createObservability, type Observability } from './observability/observability.js';
import { DataDirLockedError, lockDataDir } from './service/data-dir-lock.js';
import { exportImportUsage, runExport, runImport } from './cli-transfer.js';
import { buildServer } from './server.js';

const usage = `Usage:
  driftdb serve [flags]           serve the HTTP API (driftdb serve --help lists the flags)
  driftdb doctor --data-dir DIR   check a data dir offline: exit 0 healthy, 1 corrupt
  driftdb audit verify --data-dir DIR [--audit-log-path FILE] [--audit-hmac-key-file FILE] [--node-id NAME]
                                  check the audit chain offline (server stopped): exit 0 valid, 1 not
                                  (a cluster node's chain: give its --node-id)
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

/**
 * Holds the database and the security services once recovery has opened them; until then (and once stopping) every
 * use answers 503, so no request is authenticated against a store that is not loaded.
 */
class DatabaseHolder {
  private database: Database | null = null;
  private securityServices: Security | null = null;
  private stopping = false;

  readonly get = (): Database => {
    if (this.database !== null && this.securityServices !== null && !this.stopping) return this.database;
    throw this.unavailable();
  };

  readonly security = (): Security => {
    if (this.securityServices !== null && !this.stopping) return this.securityServices;
    throw this.unavailable();
  };

  open(database: Database, security: Security): void {
    this.database = database;
    this.securityServices = security;
  }

  /** Takes both out of service and answers them (null if they never opened) for closing. */
  stop(): { database: Database | null; security: Security | null } {
    this.stopping = true;
    return { database: this.database, security: this.securityServices };
  }

  private unavailable(): DriftError {
    const detail = this.stopping ? 'the server is shutting down' : 'recovering the log; retry shortly';
    return new DriftError('unavailable', detail, { retryAfterSeconds: 1 });
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
  const memoryLimitMb = config.memoryLimitMb ?? defaultMemoryLimitMb();
  const heapMb = heapLimitMbFor(memoryLimitMb);
  if (currentHeapLimitMb() < heapMb && process.env[reexecMarker] === undefined) return serveWithHeap(heapMb);
  if (process.env[reexecMarker] !== undefined) dieWithParent();
  lockDataDir(config.dataDir, 'serve', { createDir: true });
  servingHeapPolicy();
  const logger = createLogger(config);
  // Read before listening, like the TLS files: a bad key file stops the start with exit 2.
  const hmacKey = await loadAuditHmacKey(config);
  const holder = new DatabaseHolder();
  const observability = createObservability(config, { logger, db: holder.get });
  const cluster = config.cluster === 'etcd' ? clusterOf(config, logger) : null;
  const app = await buildServer(config, { db: holder.get, security: holder.security, logger, observability, cluster });
  const opening = openAfterListen(app, { config, logger, holder, observability, hmacKey, memoryLimitMb, cluster });
  installSignalHandlers(app, logger, holder, opening);
  return opening.then((code) => code ?? new Promise<number>(() => {}));
}

/**
 * Listens first, so /healthz answers and /readyz says 503 during recovery, then opens the database.
 * Resolves with an exit code only when the process must stop; a serving process never resolves it.
 */
async function openAfterListen(
  app: FastifyInstance,
  deps: {
    config: Config;
    logger: Logger;
    holder: DatabaseHolder;
    observability: Observability;
    hmacKey: Buffer | null;
    memoryLimitMb: number;
    cluster: Cluster | null;
  },
): Promise<number | null> {
  const { config, logger, holder, cluster } = deps;
  await app.listen({ host: config.host, port: config.port });
  // The "listening" line is part of the contract (scripts read the URL from it): logged whatever --log-level says.
  logger.child({}, { level: 'info' }).info({ url: urlOf(app, config) }, 'listening');
  if (cluster !== null) {
    cluster.setUrl(config.clusterAdvertiseUrl ?? urlOf(app, config));
    await cluster.connect();
  }
  let database: Database;
  try {
    database = await openDatabase({
      dataDir: config.dataDir,
      logger,
      lockTimeoutMs: config.lockTimeoutMs,
      checkpointIntervalBytes: config.checkpointIntervalMb * MiB,
      memoryLimitBytes: deps.memoryLimitMb * MiB,
      memoryLimitName: `--memory-limit-mb ${deps.memoryLimitMb}`,
      onFatal: (error) => {
        // The log failed and could not be cut back to its last acknowledged record: a restart might replay writes
        // that were refused. Stop now, loudly, rather than serve on.
        logger.fatal({ err: error }, 'the log cannot be made consistent; exiting');
        process.stderr.write(`driftdb: the log failed and could not be cut back (${error.message}); exiting\n`);
        process.exit(1);
      },
      ...(deps.observability.engineObserver ? { observer: deps.observability.engineObserver } : {}),
      // Cluster mode: the database opens once this node has caught up with the shared log.
      ...(cluster !== null ? { replicatedLog: cluster.replicatedLog(), clusterCommitTimeoutMs: config.clusterWriteTimeoutMs } : {}),
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
  const security = await Security.open({
    config,
    db: database,
    logger: logger.child({ module: 'security' }),
    announce: (line) => process.stdout.write(`${line}\n`),
    hmacKey: deps.hmacKey,
  });
  if (config.heapReclaimIdleMs > 0) heapReclaimer(config.heapReclaimIdleMs, logger).start();
  holder.open(database, security);
  logger.info({ seq: database.durableSeq, memoryLimitMb: deps.memoryLimitMb, heapLimitMb: currentHeapLimitMb() }, 'ready');
  return null;
}

/**
 * Recovery and bulk writes leave V8's heap 2-3 times the live data, and V8 keeps what it once grew to: the reclaimer
 * compacts it when the server first turns idle after recovery and again whenever it turns idle after the heap grew,
 * so RSS follows the live data (docs/engine.md, Memory).
 */
function heapReclaimer(idleMs: number, logger: Logger): HeapReclaimer {
  const mib = (bytes: number): number => Math.round(bytes / MiB);
  return new HeapReclaimer({
    idleMs,
    onReclaimed: (r: HeapReclaim) =>
      logger.info(
        { module: 'memory', reason: r.reason, heapMiBBefore: mib(r.heapTotalBytesBefore), heapMiBAfter: mib(r.heapTotalBytesAfter), liveMiB: mib(r.heapUsedBytesAfter), ms: Math.round(r.ms) },
        'heap reclaimed',
      ),
  });
}

/** Cluster mode (--cluster etcd): the etcd client and everything built on it; it connects once the server listens. */
function clusterOf(config: Config, logger: Logger): Cluster {
  return new Cluster({
    endpoints: config.etcdEndpoints!.split(',').map((endpoint) => endpoint.trim()).filter((endpoint) => endpoint.length > 0),
    prefix: config.etcdPrefix,
    nodeId: config.nodeId!,
    logger: logger.child({ module: 'cluster' }),
    trimKeepRecords: config.clusterTrimKeepRecords,
  });
}

/** Set in the environment of the process `serve` restarts with a larger heap, so that it restarts only once. */
const reexecMarker = 'DRIFTDB_HEAP_REEXEC';

function currentHeapLimitMb(): number {
  return Math.floor(v8.getHeapStatistics().heap_size_limit / MiB);
}

/** Without --memory-limit-mb: half the heap this process was given, so the heap it has is the heap it needs. */
function defaultMemoryLimitMb(): number {
  return Math.floor(currentHeapLimitMb() / 2);
}

/**
 * The heap a server with this memory limit runs with: twice the limit. Recovery rebuilds what the server held and
 * briefly more (staging maps, checkpoint chunks); a restart of a server filled to its limit must fit.
 */
function heapLimitMbFor(memoryLimitMb: number): number {
  return 2 * memoryLimitMb;
}

/**
 * Runs `serve` again in a child Node with a heap of `heapMb` MiB (V8 sizes its heap at start), passing signals on
 * and exiting as it exits. If this process is killed outright, the child goes too (see dieWithParent).
 */
function serveWithHeap(heapMb: number): Promise<number> {
  const child = spawn(process.execPath, [...process.execArgv, `--max-old-space-size=${heapMb}`, process.argv[1]!, ...process.argv.slice(2)], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, [reexecMarker]: String(heapMb) },
  });
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => child.kill(signal));
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal === null ? 1 : 128 + (os.constants.signals[signal] ?? 0)))));
}

/** In the restarted child: when the parent dies without a word (kill -9), die as abruptly, as one process would. */
function dieWithParent(): void {
  process.on('disconnect', () => process.kill(process.pid, 'SIGKILL'));
}

/**
 * V8 allocates objects straight into the old generation from an allocation site whose objects mostly survived
 * (pretenuring). A burst of slow concurrent requests (a bulk load of batches) taught it to do that for request
 * objects for good, after which every scavenge took several times longer and a GET cost more CPU (measured: see
 * README.md, Performance). Set before anything is served or recovered, which leaves restarts no slower.
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
    const { database, security } = holder.stop();
    // The audit log's last entries and its head go through the database, so security closes first.
    await security?.close();
    await database?.close();
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

async function runAudit(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  if (action === '--help' || action === '-h' || action === undefined) {
    process.stdout.write(
      'Usage: driftdb audit verify --data-dir DIR [--audit-log-path FILE] [--audit-hmac-key-file FILE]\n\n' +
        'Verifies the audit chain across every file against the head recorded in the database, with the server\n' +
        'stopped (it opens the database, as a start would): exit 0 valid, 1 invalid or truncated.\n',
    );
    return action === undefined ? 2 : 0;
  }
  if (action !== 'verify') return fail(`unknown audit action "${action}" (try: driftdb audit verify --data-dir DIR)`, 2);
  const config = loadConfig(rest, process.env, { only: ['dataDir', 'auditLogPath', 'auditHmacKeyFile', 'nodeId'] });
  const result = await verifyAuditOffline(config);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return result.valid ? 0 : 1;
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
    if (command === 'audit') return await runAudit(rest);
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

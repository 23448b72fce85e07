// The Prometheus metrics of GET /metrics (http-api.md §7): one prom-client registry per server holding the request
// histogram, the engine's events (through the EngineObserver port), the engine's own figures (read from
// Database.stats() when scraped), heap figures and Node's process metrics, every name prefixed `driftdb_`.

import v8 from 'node:v8';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type CollectFunction } from 'prom-client';
import type { Database, EngineObserver, EngineStats } from '../engine/index.js';
import { RequestDurations } from './request-durations.js';

export const metricsPrefix = 'driftdb_';

export class Metrics {
  readonly registry = new Registry();
  readonly requestDurations = new RequestDurations();
  /** The engine's metrics port: counts events as they happen (see src/engine/observer.ts). */
  readonly engineObserver: EngineObserver;
  private readonly slowQueries: Counter;

  constructor(private readonly db: () => Database) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: metricsPrefix });
    this.registry.registerMetric(this.requestDurations as unknown as Counter);

    const fsync = new Histogram({
      name: 'driftdb_fsync_duration_seconds',
      help: 'Wall time of each fdatasync of a log group.',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    const groupSize = new Histogram({
      name: 'driftdb_group_commit_records',
      help: 'Commit records written and synced together in one log group.',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
      registers,
    });
    const logWritten = new Counter({ name: 'driftdb_log_written_bytes_total', help: 'Bytes appended to the log.', registers });
    const rowsWritten = new Counter({ name: 'driftdb_rows_written_total', help: 'Row events committed (puts, patches, deletes).', registers });
    const lockWaits = new Counter({ name: 'driftdb_lock_waits_total', help: 'Writes that had to wait for a row lock another transaction held.', registers });
    const conflicts = new Counter({
      name: 'driftdb_conflicts_total',
      help: 'Retryable conflicts by code: serialization_failure, deadlock_detected, lock_timeout.',
      labelNames: ['code'],
      registers,
    });
    const serializationFailures = new Counter({ name: 'driftdb_serialization_failures_total', help: 'Transactions and writes that failed with serialization_failure.', registers });
    const checkpoints = new Histogram({
      name: 'driftdb_checkpoint_duration_seconds',
      help: 'Time to write each checkpoint.',
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    });
    this.slowQueries = new Counter({ name: 'driftdb_slow_queries_total', help: 'Requests recorded in the slow-query log.', registers });
    this.engineObserver = {
      logGroupSynced: (group) => {
        fsync.observe(group.syncSeconds);
        groupSize.observe(group.records);
        logWritten.inc(group.bytes);
      },
      committed: (commit) => {
        if (commit.rows > 0) rowsWritten.inc(commit.rows);
      },
      lockWaitStarted: () => lockWaits.inc(),
      conflict: (code) => {
        conflicts.inc({ code });
        if (code === 'serialization_failure') serializationFailures.inc();
      },
      checkpointWritten: (checkpoint) => checkpoints.observe(checkpoint.seconds),
    };
    this.registerEngineFigures();
    this.registerHeapFigures();
  }

  /** Counts one request recorded as a slow query. */
  countSlowQuery(): void {
    this.slowQueries.inc();
  }

  /** The Prometheus text exposition of every metric. */
  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Figures the engine keeps anyway, read from Database.stats() at scrape time: nothing is counted twice. */
  private registerEngineFigures(): void {
    const stat = (pick: (stats: EngineStats) => number | null) => (): number | undefined => {
      const value = readOrSkip(this.db, (db) => pick(db.stats()));
      return value === null ? undefined : value;
    };
    this.counterOf('driftdb_commits_total', 'Commits made durable since the process started.', stat((s) => s.commits));
    this.counterOf('driftdb_deadlocks_total', 'Lock waits refused because they would close a cycle (deadlock_detected).', stat((s) => s.deadlocks));
    this.gaugeOf('driftdb_seq', 'Newest durable commit seq.', stat((s) => s.seq));
    this.gaugeOf('driftdb_tables', 'Tables.', stat((s) => s.tables));
    this.gaugeOf('driftdb_rows', 'Live rows across all tables.', stat((s) => s.rows));
    this.gaugeOf('driftdb_versions_held', 'Row versions held (every event of every key, deletes included).', stat((s) => s.versions));
    this.gaugeOf('driftdb_log_bytes', 'Bytes of log segments on disk.', stat((s) => s.logBytes));
    this.gaugeOf('driftdb_open_transactions', 'Interactive transactions open now.', stat((s) => s.openTransactions));
    this.gaugeOf('driftdb_checkpoint_seq', 'Seq of the newest checkpoint (absent without one).', stat((s) => s.checkpointSeq));
    const db = this.db;
    new Gauge({
      name: 'driftdb_table_rows',
      help: 'Live rows per table.',
      labelNames: ['table'],
      registers: [this.registry],
      collect(this: Gauge) {
        this.reset();
        const tables = readOrSkip(db, (database) => database.listTables());
        for (const table of tables ?? []) this.set({ table: table.name }, table.rowCount);
      },
    });
  }

  private registerHeapFigures(): void {
    this.gaugeOf('driftdb_heap_used_bytes', 'V8 heap in use.', () => v8.getHeapStatistics().used_heap_size);
    this.gaugeOf('driftdb_heap_limit_bytes', 'V8 heap size limit: the process fails past it.', () => v8.getHeapStatistics().heap_size_limit);
  }

  /** A gauge read when scraped; left out (not shown as 0) while `read` answers undefined: the database recovers. */
  private gaugeOf(name: string, help: string, read: () => number | undefined): void {
    // The shape prom-client's registry renders (what its own Gauge.get() answers).
    const gauge = {
      name,
      help,
      type: 'gauge',
      aggregator: 'sum',
      get() {
        const value = read();
        return { name, help, type: 'gauge', aggregator: 'sum', values: value === undefined ? [] : [{ value, labels: {} }] };
      },
    };
    this.registry.registerMetric(gauge as unknown as Gauge);
  }

  /** A counter whose value the engine keeps: set from the figure at scrape time. */
  private counterOf(name: string, help: string, read: () => number | undefined): void {
    new Counter({
      name,
      help,
      registers: [this.registry],
      collect: function (this: Counter) {
        const value = read();
        if (value === undefined) return;
        this.reset();
        this.inc(value);
      } as CollectFunction<Counter>,
    });
  }
}

/** Reads from the database, or answers undefined while it is being recovered or after it closed (db() throws). */
function readOrSkip<T>(db: () => Database, read: (db: Database) => T): T | undefined {
  let database: Database;
  try {
    database = db();
  } catch {
    return undefined;
  }
  return read(database);
}

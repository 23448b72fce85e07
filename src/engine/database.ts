// The Database façade: checks its inputs and hands each call to the part that does it: the catalog changes and
// the commit pipeline to the store, row writes to a transaction (an autocommit write is a one-write transaction),
// committed reads to the read helpers, checkpoints to the checkpointer. Public methods check; the parts do.

import { join } from 'node:path';
import { DriftError, isDriftError } from '../errors.js';
import { limits } from '../limits.js';
import type {
  BeginInput,
  CreateTableInput,
  CreateTableOptions,
  Database,
  DeleteInput,
  EngineStats,
  CommitOutcome,
  ForkInput,
  GetInput,
  IdempotencyEntry,
  Health,
  HistoryResult,
  Page,
  PatchInput,
  PutInput,
  RestoreInput,
  RowPolicy,
  RowRead,
  ScanInput,
  TableInfo,
  Transaction,
  TxRef,
  WriteResult,
} from './api.js';
import { isolationLevels } from './api.js';
import { Checkpointer } from './checkpointer.js';
import { diffTable, forkChanges, restoreWrites, type DiffInput, type DiffPage } from './time-travel.js';
import { ChangeFeed, type ChangesInput, type ChangesPage } from './feed.js';
import { LockManager } from './locks/lock-manager.js';
import { DocumentReader } from './log/document-reader.js';
import { SegmentList } from './log/segment-list.js';
import { MemoryGuard } from './memory-guard.js';
import type { EngineObserver } from './observer.js';
import { ConflictWindow } from './mvcc/conflict-window.js';
import { asOfSeq, cursorSnapshot, historyAt, readRowAt } from './mvcc/reads.js';
import { TransactionRegistry } from './mvcc/registry.js';
import { SnapshotSource } from './mvcc/sources.js';
import type { TableState } from './mvcc/table-state.js';
import { TransactionImpl, type TransactionContext } from './mvcc/transaction.js';
import { compileQuery, executeQuery, planQuery, type QuerySpec } from './query/index.js';
import { recoverStore } from './recovery.js';
import { Replica } from './replica.js';
import type { ReplicatedLog } from './replicated-log.js';
import { nodeFileSystem, type FileSystem } from './storage/fs.js';
import { Store } from './store.js';
import { checkSchemaPatterns, compileTableSchema } from './table-schema.js';
import type { Change } from './types.js';
import { encodeBatch } from './log/batch.js';

export interface EngineLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface OpenDatabaseOptions {
  dataDir: string;
  logger?: EngineLogger;
  lockTimeoutMs?: number;
  /** Write a checkpoint automatically after this many bytes of log since the last one. */
  checkpointIntervalBytes?: number;
  fileSystem?: FileSystem;
  /** Refuse writes (503) while the V8 heap in use is at this many bytes; absent = no guard. */
  memoryLimitBytes?: number;
  /** How answers name the memory limit (the setting that sets it). */
  memoryLimitName?: string;
  /** Characters of old versions' documents kept decoded in memory. */
  versionCacheCharsMax?: number;
  /**
   * The log failed and could not even be cut back to its last acknowledged record: nothing can be promised about
   * what a restart would replay, so the process must stop (exit non-zero). Defaults to logging the error.
   */
  onFatal?(error: Error): void;
  /** Metrics port (src/observability implements it); absent = nothing observed. */
  observer?: EngineObserver;
  /** Recovery logs its progress at info at most this often (default 5 s). */
  recoveryProgressIntervalMs?: number;
  /**
   * Cluster mode (http-api.md §10): commits are proposed to this shared log and every node applies it in order.
   * openDatabase resolves once this node has caught up with it. Absent = a single node.
   */
  replicatedLog?: ReplicatedLog;
  /** Cluster mode: a commit the shared log has not confirmed within this long answers 503 (default 10 s). */
  clusterCommitTimeoutMs?: number;
}

const silentLogger: EngineLogger = { info() {}, warn() {}, error() {} };
const tableNamePattern = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  const logger = options.logger ?? silentLogger;
  const fileSystem = options.fileSystem ?? nodeFileSystem;
  const segments = await SegmentList.open(fileSystem, join(options.dataDir, 'wal'));
  const documents = new DocumentReader({
    fileSystem,
    segments,
    logger,
    ...(options.versionCacheCharsMax !== undefined ? { cacheCharsMax: options.versionCacheCharsMax } : {}),
  });
  const memory = options.memoryLimitBytes === undefined ? null : memoryGuard(options, logger);
  const observer = options.observer ?? {};
  const conflicts = new ConflictWindow(0);
  let registry: TransactionRegistry | null = null;
  let checkpointer: Checkpointer | null = null;
  let feed: ChangeFeed | null = null;
  const store = new Store({
    documents,
    segments,
    memory,
    events: {
      decided: (record) => conflicts.remember(record, registry!.oldestSerializableSnapshot()),
      durable: (record) => {
        observer.committed?.({ rows: countRowChanges(record.changes) });
        feed!.durable(record);
        checkpointer?.maybe();
      },
    },
  });
  registry = new TransactionRegistry(store, conflicts, observer);
  feed = new ChangeFeed(store);
  const recovered = await recoverStore(store, {
    dataDir: options.dataDir,
    fileSystem,
    logger,
    ...(options.onFatal ? { onFatal: options.onFatal } : {}),
    ...(observer.logGroupSynced ? { onGroupSynced: observer.logGroupSynced.bind(observer) } : {}),
    ...(options.recoveryProgressIntervalMs !== undefined ? { progressIntervalMs: options.recoveryProgressIntervalMs } : {}),
  });
  conflicts.prune(store.lastSeq);
  checkpointer = new Checkpointer({
    store,
    dataDir: options.dataDir,
    fileSystem,
    logger,
    intervalBytes: options.checkpointIntervalBytes ?? limits.checkpointIntervalBytes,
    recovered,
    onWritten: ({ seq, bytes, ms }) => observer.checkpointWritten?.({ seq, bytes, seconds: ms / 1000 }),
  });
  const locks = new LockManager({
    lockTimeoutMs: options.lockTimeoutMs ?? 5000,
    waitersMax: limits.lockWaitersMax,
    onDeadlock: (info) => logger.warn({ module: 'locks', ...info }, 'deadlock detected'),
    onWait: () => observer.lockWaitStarted?.(),
  });
  const replica = options.replicatedLog === undefined ? null : await joinCluster(store, registry, options.replicatedLog, options, logger);
  return new Engine({ store, locks, conflicts, registry }, checkpointer, feed, replica);
}

/** Cluster mode: commits go through the replica from now on; resolves once this node has caught up with the shared log. */
async function joinCluster(
  store: Store,
  registry: TransactionRegistry,
  log: ReplicatedLog,
  options: OpenDatabaseOptions,
  logger: EngineLogger,
): Promise<{ replica: Replica; log: ReplicatedLog }> {
  const replica = new Replica({
    store,
    log,
    commitTimeoutMs: options.clusterCommitTimeoutMs ?? clusterCommitTimeoutMsDefault,
    // A table dropped by any node: this node's transactions with writes to it can never commit, so they end now.
    onApplied: (record) => {
      for (const change of record.changes) if (change.kind === 'dropTable') for (const tx of [...registry.open]) tx.tableDropped(change.name);
    },
  });
  store.attachReplica(replica);
  const started = Date.now();
  const fromSeq = store.lastSeq;
  await log.start(replica);
  logger.info({ module: 'engine', fromSeq, seq: store.lastSeq, ms: Date.now() - started }, 'caught up with the shared log');
  return { replica, log };
}

const clusterCommitTimeoutMsDefault = 10_000;
/** On close, a proposal in flight gets this long to learn its outcome. */
const clusterDrainMs = 5_000;

function memoryGuard(options: OpenDatabaseOptions, logger: EngineLogger): MemoryGuard {
  return new MemoryGuard({
    limitBytes: options.memoryLimitBytes!,
    ...(options.memoryLimitName !== undefined ? { limitName: options.memoryLimitName } : {}),
    onChange: (refusing, usedBytes) => {
      const fields = { module: 'memory', usedBytes, limitBytes: options.memoryLimitBytes };
      if (refusing) logger.warn(fields, 'memory limit reached: writes are refused');
      else logger.info(fields, 'memory use below the limit again: writes accepted');
    },
  });
}

/** Autocommit writes read and write the newest committed state, under the row's lock: one-write transactions. */
const autocommitOptions = { isolation: 'read_committed', readOnly: false, autocommit: true } as const;

class Engine implements Database {
  private readonly context: TransactionContext;
  private readonly store: Store;
  private readonly checkpointer: Checkpointer;
  private readonly feed: ChangeFeed;
  private readonly cluster: { replica: Replica; log: ReplicatedLog } | null;
  private closed = false;

  constructor(context: TransactionContext, checkpointer: Checkpointer, feed: ChangeFeed, cluster: { replica: Replica; log: ReplicatedLog } | null) {
    this.context = context;
    this.store = context.store;
    this.checkpointer = checkpointer;
    this.feed = feed;
    this.cluster = cluster;
  }

  get durableSeq(): number {
    return this.store.placedSeq;
  }

  // ---- tables ---------------------------------------------------------------------------------------------

  private tableInfo(table: TableState): TableInfo {
    const { def } = table;
    return {
      name: def.name,
      primaryKey: def.primaryKey,
      indexes: [...def.indexes],
      ...(def.schema !== undefined ? { schema: def.schema } : {}),
      rowCount: table.liveRows,
      createdSeq: def.createdSeq,
      ...(def.forkedFrom !== undefined ? { forkedFrom: { ...def.forkedFrom } } : {}),
    };
  }

  async createTable(input: CreateTableInput, options: CreateTableOptions = {}): Promise<TableInfo> {
    checkTableName(input.name, options.system === true);
    if (typeof input.primaryKey !== 'string' || input.primaryKey.length === 0 || input.primaryKey.length > limits.fieldPathLengthMax) {
      throw new DriftError('validation_failed', 'primaryKey must be a non-empty field name.');
    }
    // The key lives in a top-level member; a dot would make the same name a nested path in queries.
    if (input.primaryKey.includes('.')) throw new DriftError('validation_failed', 'primaryKey must be a top-level field name, without dots.');
    const indexes = [...new Set(input.indexes ?? [])];
    indexes.forEach(checkFieldPath);
    if (indexes.length > limits.indexesPerTableMax) {
      throw new DriftError('validation_failed', `A table may have at most ${limits.indexesPerTableMax} indexes.`);
    }
    if (input.schema !== undefined) {
      if (JSON.stringify(input.schema).length > limits.schemaBytesMax) {
        throw new DriftError('payload_too_large', `A schema may be at most ${limits.schemaBytesMax} bytes.`);
      }
      checkSchemaPatterns(input.schema);
      compileTableSchema(input.schema);
    }
    await this.commit(() => {
      this.checkNewTableName(input.name);
      return [
        {
          kind: 'createTable',
          name: input.name,
          primaryKey: input.primaryKey,
          indexes,
          ...(input.schema !== undefined ? { schema: input.schema } : {}),
        },
      ];
    });
    return this.tableInfo(this.store.readableTable(input.name));
  }

  /** A new table may take this name now (decided with the commit that creates it). */
  private checkNewTableName(name: string): void {
    if (this.store.tables.has(name)) throw new DriftError('table_exists', `Table '${name}' already exists.`);
    if (this.store.tables.size >= limits.tablesMax) {
      throw new DriftError('validation_failed', `A database may hold at most ${limits.tablesMax} tables.`);
    }
  }

  listTables(): TableInfo[] {
    return [...this.store.tables.values()]
      .filter((t) => t.def.createdSeq <= this.store.visibleSeq)
      .sort((a, b) => (a.def.name < b.def.name ? -1 : 1))
      .map((t) => this.tableInfo(t));
  }

  getTable(name: string): TableInfo {
    return this.tableInfo(this.store.readableTable(name));
  }

  async dropTable(name: string): Promise<void> {
    await this.commit(() => {
      this.store.readableTable(name);
      return [{ kind: 'dropTable', name }];
    });
    // Pending writes to the dropped table can never commit: their transactions abort now and free their row
    // locks, which would otherwise hold rows of a table re-created under the same name.
    for (const tx of [...this.context.registry.open]) tx.tableDropped(name);
  }

  async createIndex(tableName: string, field: string): Promise<TableInfo> {
    checkFieldPath(field);
    await this.commit(() => {
      const table = this.store.readableTable(tableName);
      if (table.indexes.has(field)) throw new DriftError('index_exists', `Table '${tableName}' already has an index on '${field}'.`);
      if (table.indexes.size >= limits.indexesPerTableMax) {
        throw new DriftError('validation_failed', `A table may have at most ${limits.indexesPerTableMax} indexes.`);
      }
      return [{ kind: 'createIndex', table: tableName, field }];
    });
    return this.tableInfo(this.store.readableTable(tableName));
  }

  async dropIndex(tableName: string, field: string): Promise<void> {
    await this.commit(() => {
      const table = this.store.readableTable(tableName);
      if (!table.indexes.has(field)) throw new DriftError('not_found', `Table '${tableName}' has no index on '${field}'.`);
      return [{ kind: 'dropIndex', table: tableName, field }];
    });
  }

  /** A catalog change: one commit of its own, its checks decided with it (in cluster mode, again if it lost its seq). */
  private async commit(decide: () => Change[]): Promise<number> {
    return this.store.commit(() => ({ changes: decide(), catalog: true }));
  }

  // ---- row writes: each its own one-write transaction unless it names one -------------------------------

  put(input: PutInput): Promise<WriteResult> {
    return input.tx !== undefined ? input.tx.put(input) : this.autocommit(input, (tx) => tx.put(input));
  }

  patch(input: PatchInput): Promise<WriteResult> {
    return input.tx !== undefined ? input.tx.patch(input) : this.autocommit(input, (tx) => tx.patch(input));
  }

  delete(input: DeleteInput): Promise<WriteResult> {
    return input.tx !== undefined ? input.tx.delete(input) : this.autocommit(input, (tx) => tx.delete(input));
  }

  private async autocommit(caller: TxRef, write: (tx: Transaction) => Promise<WriteResult>): Promise<WriteResult> {
    const tx = new TransactionImpl(this.context, { ...autocommitOptions, policies: caller.policies });
    try {
      const result = await write(tx);
      const { seq } = await tx.commit();
      // In cluster mode the write may have been made again on a newer version at commit: answer what was committed.
      return { ...result, seq, created: tx.autocommitCreated ?? result.created };
    } finally {
      // A refused write (a failed condition, a bad document) leaves the transaction open: free its lock.
      if (tx.state === 'active' && !tx.committing) tx.rollback();
    }
  }

  // ---- reads: committed ones here, those inside a transaction by the transaction --------------------------

  get(input: GetInput): RowRead {
    if (input.tx !== undefined) return input.tx.get(input);
    const table = this.store.readableTable(input.table);
    return readRowAt(table, input.key, asOfSeq(this.store, input.asOf) ?? this.store.visibleSeq, policyOf(input, table));
  }

  history(input: { table: string; key: string } & TxRef): HistoryResult {
    if (input.tx !== undefined) return input.tx.history(input);
    const table = this.store.readableTable(input.table);
    return historyAt(this.store, table, input.key, this.store.visibleSeq, policyOf(input, table));
  }

  scan(input: ScanInput): Page {
    const spec: QuerySpec = { table: input.table };
    if (input.limit !== undefined) spec.limit = input.limit;
    if (input.cursor !== undefined) spec.cursor = input.cursor;
    if (input.asOf !== undefined) spec.asOf = input.asOf;
    return this.query(spec, input);
  }

  query(spec: QuerySpec, options: TxRef = {}): Page {
    if (options.tx !== undefined) return options.tx.query(spec);
    const table = this.store.readableTable(spec.table);
    const compiled = compileQuery(spec, table.def);
    const source = this.committedSource(table, spec, policyOf(options, table));
    // The page itself, its seq added: a page of stored documents parses its rows only if someone reads them.
    return Object.assign(executeQuery(compiled, source), { seq: source.seq });
  }

  explain(spec: QuerySpec, options: TxRef = {}): { plan: ReturnType<typeof planQuery> } {
    const table = this.store.readableTable(spec.table);
    const policy = policyOf(options, table);
    const source = this.committedSource(table, spec, policy);
    const plan = planQuery(compileQuery(spec, table.def), source);
    // An index's estimate counts the rows holding a value, hidden ones too: under a row policy it would tell whether
    // a hidden row has it, so the caller is shown the table-wide figure a scan shows instead.
    if (policy !== null && plan.access === 'index') plan.estimatedRows = source.rowCountEstimate();
    return { plan };
  }

  // A cursor pins the snapshot of the first page; otherwise asOf, or the newest state.
  private committedSource(table: TableState, spec: QuerySpec, policy: RowPolicy | null): SnapshotSource {
    const seq = cursorSnapshot(this.store, spec) ?? asOfSeq(this.store, spec.asOf) ?? this.store.visibleSeq;
    return new SnapshotSource(table, seq, (s) => this.store.tsOf(s), policy);
  }

  // ---- transactions ---------------------------------------------------------------------------------------

  begin(input: BeginInput = {}): Transaction {
    this.store.checkWritable();
    const isolation = input.isolation ?? 'serializable';
    if (!isolationLevels.includes(isolation)) {
      throw new DriftError('validation_failed', `isolation must be one of ${isolationLevels.join(', ')}.`);
    }
    return new TransactionImpl(this.context, { isolation, readOnly: input.readOnly === true, policies: input.policies });
  }

  // ---- whole tables in time: diff, fork, restore -----------------------------------------------------------

  diff(input: DiffInput): DiffPage {
    if (input.limit !== undefined && (!Number.isSafeInteger(input.limit) || input.limit < 1 || input.limit > limits.pageLimitMax)) {
      throw new DriftError('validation_failed', `limit must be 1 to ${limits.pageLimitMax}.`);
    }
    return diffTable(this.store.readableTable(input.table), input, this.store.visibleSeq);
  }

  async fork(input: ForkInput): Promise<TableInfo> {
    const source = this.store.readableTable(input.table);
    checkTableName(input.name, false);
    const asOf = asOfSeq(this.store, input.asOf)!;
    this.checkNewTableName(input.name);
    this.store.checkWritable();
    const changes = forkChanges(source, input.name, asOf);
    const request = input.idempotency;
    // The answer to replay is the new table as this commit makes it.
    const idempotency =
      request === undefined
        ? []
        : [{ ...request, answer: (outcome: CommitOutcome) => request.answer({ ...outcome, table: forkedInfo(source, input.name, asOf, outcome) }) }];
    const rowsWritten = changes.length - 1;
    // The rows as of asOf never change; what is decided with the commit is that the name is free and the source is
    // the same table (a drop and re-create of its name in between would make the rows another table's).
    const seq = await this.store.commit(() => {
      this.checkNewTableName(input.name);
      if (this.store.tables.get(source.def.name) !== source) throw new DriftError('table_not_found', `Table '${source.def.name}' was dropped.`);
      return { changes: [...changes], idempotency, catalog: true };
    });
    // The table as this commit made it, as the idempotency entry recorded it: the answer and its replay are one, and
    // a write to (or drop of) the new table right after cannot change or fail the answer to the fork.
    return forkedInfo(source, input.name, asOf, { seq, rowsWritten });
  }

  async restore(input: RestoreInput): Promise<{ seq: number | null; rowsChanged: number }> {
    const table = this.store.readableTable(input.table);
    const asOf = asOfSeq(this.store, input.asOf)!;
    let writes = restoreWrites(table, asOf);
    if (writes.length === 0) {
      const idempotency = input.idempotency;
      if (idempotency !== undefined) await this.store.commit(() => ({ changes: [], idempotency: [idempotency] }));
      return { seq: null, rowsChanged: 0 };
    }
    // One transaction of every put and delete, under the rows' locks, as any writer of those rows would take them.
    // Which rows differ from the target is sure only under their locks: a row that matched it may change while the
    // restore waits for another row's lock. So once it holds the locks it looks again, until nothing more differs,
    // and then commits at once (a commit is decided before its first await, so no write can slip in between).
    const tx = new TransactionImpl(this.context, { ...autocommitOptions, policies: input.policies, writesMax: Number.POSITIVE_INFINITY });
    const locked = new Set<string>();
    let rowsChanged = 0;
    try {
      for (let round = 1; writes.length > 0; round++) {
        if (round > limits.restoreRoundsMax) {
          throw new DriftError('serialization_failure', `Rows of '${input.table}' kept changing while the restore ran; retry it.`, { retryable: true });
        }
        for (const write of writes) {
          locked.add(write.key);
          if (await this.restoreRow(tx, input.table, write)) rowsChanged++;
        }
        writes = restoreWrites(table, asOf).filter((write) => !locked.has(write.key));
      }
      const { seq } = await tx.commit(input.idempotency === undefined ? {} : { idempotency: input.idempotency });
      return { seq, rowsChanged };
    } finally {
      if (tx.state === 'active' && !tx.committing) tx.rollback();
    }
  }

  /** Writes one row of a restore; false when there was nothing to do (a row to delete that was deleted meanwhile). */
  private async restoreRow(tx: TransactionImpl, table: string, write: { key: string; json: string | null }): Promise<boolean> {
    if (write.json !== null) {
      await tx.put({ table, key: write.key, doc: JSON.parse(write.json) as unknown });
      return true;
    }
    try {
      await tx.delete({ table, key: write.key });
      return true;
    } catch (error) {
      // The lock is taken before the row is looked at: gone now, it stays gone until the restore commits.
      if (isDriftError(error) && error.code === 'row_not_found') return false;
      throw error;
    }
  }

  idempotencyEntry(user: string, key: string): IdempotencyEntry | null {
    const slot = this.store.idempotency.slot(user, key, Date.now());
    // An answer whose commit is not durable yet is not an answer yet: its request is still running. Its text is read
    // back from the commit's record in this node's log, so in cluster mode (where a commit is visible a moment before
    // that log holds it) it waits for placedSeq; a retry in that moment is refused as in progress when decided.
    return slot === null || slot.seq > this.store.placedSeq ? null : this.store.idempotency.entry(user, key, slot);
  }

  logBatch(afterSeq: number, recordsMax: number): Buffer | null {
    const last = Math.min(this.store.placedSeq, afterSeq + recordsMax);
    if (last <= afterSeq) return null;
    const locations: number[] = [];
    for (let seq = afterSeq + 1; seq <= last; seq++) {
      const location = this.store.timeline.locationOf(seq);
      if (location < 0) throw new DriftError('internal', `The record of seq ${seq} has no known place in the log.`);
      locations.push(location);
    }
    // The frames as stored: the ackedSeq inside each is this node's log's own, which a batch ignores.
    return encodeBatch(`log:${afterSeq + 1}`, afterSeq + 1, this.store.documents.readRecordFrames(afterSeq + 1, locations));
  }

  waitForSeq(seq: number, timeoutMs: number): Promise<void> {
    if (!Number.isSafeInteger(seq) || seq < 0) throw new DriftError('validation_failed', 'minSeq must be a non-negative integer.');
    return this.store.waitVisible(seq, timeoutMs);
  }

  // ---- the change feed ------------------------------------------------------------------------------------

  changes(input: ChangesInput): ChangesPage {
    if (!Number.isSafeInteger(input.limit) || input.limit < 1 || input.limit > limits.feedPageCommitsMax) {
      throw new DriftError('validation_failed', `limit must be 1 to ${limits.feedPageCommitsMax} commits.`);
    }
    return this.feed.page(input);
  }

  subscribeChanges(listener: (seq: number) => void): () => void {
    return this.feed.subscribe(listener);
  }

  // ---- checkpoints, figures, shutdown ---------------------------------------------------------------------

  checkpoint(): Promise<{ seq: number }> {
    return this.checkpointer.checkpoint();
  }

  stats(): EngineStats {
    let rows = 0;
    let versions = 0;
    for (const table of this.store.tables.values()) {
      rows += table.liveRows;
      versions += table.versionCount;
    }
    const { registry } = this.context;
    return {
      seq: this.store.visibleSeq,
      tables: this.store.tables.size,
      rows,
      versions,
      logBytes: this.store.logBytes,
      openTransactions: registry.open.size,
      commits: this.store.commits,
      conflicts: registry.counters.conflicts,
      deadlocks: registry.counters.deadlocks,
      checkpointSeq: this.checkpointer.seq,
      versionReads: this.store.documents.diskReads,
    };
  }

  health(): Health {
    const refusal = this.closed ? null : this.store.writeRefusal();
    return refusal === null ? { writable: true } : { writable: false, reason: refusal.detail };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // A commit in flight finishes (or fails) with the log's last flush; every other open transaction rolls back.
    for (const tx of [...this.context.registry.open]) if (!tx.committing) tx.rollback();
    if (this.cluster !== null) {
      // Commits in flight get their answer from the shared log, within the commit timeout; then the log stops.
      this.cluster.replica.close();
      await this.cluster.replica.drain(clusterDrainMs);
      await this.cluster.log.close();
    }
    await this.checkpointer.settle();
    await this.store.close();
  }
}

/** A fork as GET /v1/tables/{name} will show it once its commit (`outcome`) is made. */
function forkedInfo(source: TableState, name: string, asOf: number, outcome: CommitOutcome): TableInfo {
  const { def } = source;
  return {
    name,
    primaryKey: def.primaryKey,
    indexes: [...def.indexes],
    ...(def.schema !== undefined ? { schema: def.schema } : {}),
    rowCount: outcome.rowsWritten,
    createdSeq: outcome.seq,
    forkedFrom: { table: def.name, seq: asOf },
  };
}

function countRowChanges(changes: readonly Change[]): number {
  let rows = 0;
  for (const change of changes) if (change.kind === 'row') rows++;
  return rows;
}

function policyOf(caller: TxRef, table: TableState): RowPolicy | null {
  return caller.policies?.forTable(table.def.name) ?? null;
}

function checkTableName(name: unknown, system: boolean): void {
  if (typeof name !== 'string' || !tableNamePattern.test(name)) {
    throw new DriftError('validation_failed', 'A table name must match ^[A-Za-z_][A-Za-z0-9_]{0,62}$.');
  }
  // System tables (users, token hashes, the audit head) live in the log like any table, under names no client may use.
  if (name.startsWith('_') !== system) {
    throw new DriftError('validation_failed', system ? 'A system table name must start with _.' : 'Table names starting with _ are reserved.');
  }
}

function checkFieldPath(field: unknown): void {
  if (
    typeof field !== 'string' ||
    field.length === 0 ||
    field.length > limits.fieldPathLengthMax ||
    field.split('.').some((step) => step.length === 0)
  ) {
    throw new DriftError('validation_failed', `A field path must be dot-separated names, at most ${limits.fieldPathLengthMax} characters.`);
  }
}

// The Database façade: the catalog, the commit pipeline (seq → apply → group-committed log → durable watermark),
// snapshot reads, autocommit writes under row locks, transactions, and checkpoints. Public methods check;
// private methods do.

import { join } from 'node:path';
import { DriftError } from '../errors.js';
import { limits, MiB } from '../limits.js';
import type {
  BeginInput,
  CreateTableInput,
  Database,
  DeleteInput,
  EngineStats,
  GetInput,
  HistoryResult,
  Page,
  PatchInput,
  PutInput,
  RowRead,
  ScanInput,
  TableInfo,
  Transaction,
  TxRef,
  WriteResult,
} from './api.js';
import { isolationLevels } from './api.js';
import { CheckpointLoader, dumpCheckpoint } from './checkpoint-codec.js';
import { extractPath } from './json-fields.js';
import { LockManager } from './locks/lock-manager.js';
import { loadCheckpoint, writeCheckpoint } from './log/checkpoint.js';
import { openLog, type WriteAheadLog } from './log/wal.js';
import { resolveAsOf } from './mvcc/as-of.js';
import { computeRowWrite, type RowWriteRequest } from './mvcc/row-write.js';
import { SnapshotSource } from './mvcc/sources.js';
import { TableState } from './mvcc/table-state.js';
import { rowId, TransactionImpl, type PendingWrite, type RecentCommit, type TxHost } from './mvcc/transaction.js';
import { compileQuery, cursorSeq, executeQuery, planQuery, type Predicate, type QuerySpec } from './query/index.js';
import type { RowSource } from './query/source.js';
import type { FileSystem } from './storage/fs.js';
import { checkSchemaPatterns, compileTableSchema } from './table-schema.js';
import type { ConflictCode, EngineObserver } from './observer.js';
import type { Change, CommitRecord, Doc, TableDef } from './types.js';

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
  /** Metrics port (src/observability implements it); absent = nothing observed. */
  observer?: EngineObserver;
  /** Recovery logs its progress at info at most this often (default 5 s). */
  recoveryProgressIntervalMs?: number;
}

/** How often recovery checks the clock for a progress line: every this many records replayed. */
const recoveryProgressCheckRecords = 1024;

const silentLogger: EngineLogger = { info() {}, warn() {}, error() {} };
const tableNamePattern = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  const engine = new Engine(options);
  await engine.recover();
  return engine;
}

class Engine implements Database, TxHost {
  private readonly options: OpenDatabaseOptions;
  private readonly logger: EngineLogger;
  private readonly tables = new Map<string, TableState>();
  /** Table schemas' compiler, made when the first table with a schema needs it (Ajv costs ~30 ms to load). */
  private readonly locks: LockManager;
  private wal: WriteAheadLog | null = null;
  private lastSeq = 0;
  private lastTs = 0;
  private tsBySeq = new Float64Array(1024);
  private visibleSeq = 0;
  private lastAppend: Promise<void> = Promise.resolve();
  /** True while recover() runs: tables are made staged. */
  private recovering = false;
  private failed = false;
  private closed = false;
  private autocommitCounter = 0;
  // Serializable validation state.
  private readonly openTransactions = new Set<TransactionImpl>();
  private recentCommits: RecentCommit[] = [];
  private recentCommitRows = 0;
  private recentHorizonSeq = 0;
  private readonly dirty = new Map<string, Map<string, string | null>>();
  // Checkpoints and figures.
  private checkpointSeq: number | null = null;
  private checkpointLogBytes = 0;
  private checkpointRunning: Promise<{ seq: number }> | null = null;
  private counters = { commits: 0, conflicts: 0, deadlocks: 0 };
  private readonly observer: EngineObserver;

  constructor(options: OpenDatabaseOptions) {
    this.options = options;
    this.logger = options.logger ?? silentLogger;
    this.observer = options.observer ?? {};
    this.locks = new LockManager({
      lockTimeoutMs: options.lockTimeoutMs ?? 5000,
      waitersMax: limits.lockWaitersMax,
      onDeadlock: (info) => this.logger.warn({ module: 'locks', ...info }, 'deadlock detected'),
      onWait: () => this.observer.lockWaitStarted?.(), // metrics port
    });
  }

  get durableSeq(): number {
    return this.visibleSeq;
  }

  // ---- recovery -------------------------------------------------------------------------------------------

  /**
   * Loads the newest valid checkpoint and replays the log after it. Tables are staged meanwhile (hash maps, no
   * order) and ordered once at the end: nothing reads them before recovery returns.
   */
  async recover(): Promise<void> {
    const started = Date.now();
    this.recovering = true;
    const newLoader = (): CheckpointLoader => new CheckpointLoader({ tables: this.tables, makeTable: (def) => this.makeTable(def) });
    let loader = newLoader();
    const checkpoint = await loadCheckpoint({
      dir: join(this.options.dataDir, 'checkpoints'),
      onChunk: (payload) => loader.chunk(payload),
      onDiscard: () => {
        this.tables.clear();
        loader = newLoader();
      },
      ...(this.options.fileSystem ? { fileSystem: this.options.fileSystem } : {}),
      logger: this.logger,
    });
    const afterSeq = checkpoint?.seq ?? 0;
    if (checkpoint !== null) {
      loader.finish();
      this.tsBySeq = loader.tsBySeq;
      this.lastTs = this.tsBySeq[afterSeq] ?? 0;
    }
    this.lastSeq = afterSeq;
    const progress = new RecoveryProgress(this.logger, this.options.recoveryProgressIntervalMs ?? 5_000);
    this.wal = await openLog({
      dir: join(this.options.dataDir, 'wal'),
      afterSeq,
      onRecord: (record, bytes) => {
        this.applyRecord(record);
        progress.replayed(record.seq, bytes);
      },
      ...(this.options.fileSystem ? { fileSystem: this.options.fileSystem } : {}),
      ...(this.options.logger ? { logger: this.options.logger } : {}),
      // Metrics port: fsync duration and group-commit size.
      ...(this.observer.logGroupSynced ? { onGroupSynced: this.observer.logGroupSynced.bind(this.observer) } : {}),
    });
    if (this.wal.lastSeq < afterSeq) {
      await this.wal.close();
      throw new Error(`The checkpoint at seq ${afterSeq} is ahead of the log, which ends at seq ${this.wal.lastSeq}.`);
    }
    const staged = Date.now();
    for (const table of this.tables.values()) table.finishStaging();
    this.recovering = false;
    this.visibleSeq = this.lastSeq;
    this.checkpointSeq = checkpoint?.seq ?? null;
    this.checkpointLogBytes = this.wal.bytes;
    this.recentHorizonSeq = this.lastSeq;
    this.logger.info(
      { module: 'engine', seq: this.lastSeq, checkpointSeq: afterSeq, replayed: progress.records, ms: Date.now() - started, orderMs: Date.now() - staged },
      'recovered',
    );
  }

  private recordTs(seq: number, ts: number): void {
    if (seq >= this.tsBySeq.length) {
      const grown = new Float64Array(Math.max(seq + 1, this.tsBySeq.length * 2));
      grown.set(this.tsBySeq);
      this.tsBySeq = grown;
    }
    this.tsBySeq[seq] = ts;
    this.lastTs = ts;
  }

  tsOf(seq: number): number {
    return this.tsBySeq[seq] ?? 0;
  }

  /** Applies one commit to memory: at recovery, and for a new commit before its record is durable. */
  private applyRecord(record: CommitRecord, docs?: ReadonlyArray<Doc | null>): void {
    if (record.seq !== this.lastSeq + 1) {
      throw new Error(`Log record seq ${record.seq} does not follow seq ${this.lastSeq}.`);
    }
    this.lastSeq = record.seq;
    this.recordTs(record.seq, record.ts);
    record.changes.forEach((change, i) => this.applyChange(record.seq, change, docs?.[i] ?? undefined));
  }

  private applyChange(seq: number, change: Change, doc: Doc | undefined): void {
    switch (change.kind) {
      case 'row':
        this.requireTable(change.table).applyRow(seq, change.key, change.op, change.doc, doc);
        return;
      case 'createTable': {
        const { kind: _kind, ...def } = change;
        this.tables.set(change.name, this.makeTable({ ...def, indexes: [...def.indexes], createdSeq: seq }));
        return;
      }
      case 'dropTable':
        this.tables.delete(change.name);
        return;
      case 'createIndex':
        this.requireTable(change.table).addIndex(change.field);
        return;
      case 'dropIndex':
        this.requireTable(change.table).dropIndex(change.field);
        return;
    }
  }

  private makeTable(def: TableDef): TableState {
    const table = new TableState(def, def.schema === undefined ? null : compileTableSchema(def.schema));
    if (this.recovering) table.beginStaging();
    return table;
  }

  private requireTable(name: string): TableState {
    const table = this.tables.get(name);
    if (table === undefined) throw new DriftError('table_not_found', `Table '${name}' does not exist.`);
    return table;
  }

  // ---- the commit pipeline --------------------------------------------------------------------------------

  /**
   * Decides the seq, applies the changes in memory (invisible above the watermark), appends the record, and
   * once it is durable raises the watermark so readers see it. Resolves with the seq.
   */
  private async commitChanges(changes: Change[], docs?: ReadonlyArray<Doc | null>): Promise<number> {
    this.checkWritable();
    const wal = this.wal!;
    const record: CommitRecord = { seq: this.lastSeq + 1, ts: Math.max(Date.now(), this.lastTs), changes };
    this.applyRecord(record, docs);
    this.rememberCommit(record);
    const append = wal.append(record);
    this.lastAppend = append.catch(() => {});
    try {
      await append;
    } catch (error) {
      this.failStop(error);
    }
    if (record.seq > this.visibleSeq) this.visibleSeq = record.seq;
    this.counters.commits++;
    if (this.observer.committed !== undefined) this.observer.committed({ rows: countRowChanges(changes) }); // metrics port
    this.maybeCheckpoint();
    return record.seq;
  }

  private checkWritable(): void {
    if (this.failed || this.wal === null || this.wal.failed) {
      throw new DriftError('unavailable', 'The log cannot be written; the server stopped accepting writes.', {
        retryAfterSeconds: 60,
      });
    }
    if (this.closed) throw new DriftError('unavailable', 'The database is shutting down.');
  }

  private failStop(error: unknown): never {
    if (!this.failed) this.logger.error({ module: 'engine', err: String(error) }, 'log write failed: fail-stop');
    this.failed = true;
    throw new DriftError('unavailable', 'The log cannot be written; the server stopped accepting writes.', {
      retryAfterSeconds: 60,
    });
  }

  // Serializable transactions validate against the commits after their snapshot: keep those, drop the rest.
  private rememberCommit(record: CommitRecord): void {
    const rows = [];
    for (const change of record.changes) {
      if (change.kind === 'row') rows.push({ table: change.table, key: change.key, id: rowId(change.table, change.key), json: change.doc });
    }
    this.recentCommits.push({ seq: record.seq, rows });
    this.recentCommitRows += rows.length;
    this.pruneRecentCommits();
  }

  /** Drops the recent commits no open serializable transaction can need (and the oldest, past the bound). */
  private pruneRecentCommits(): void {
    let keepAfter = this.visibleSeq;
    for (const tx of this.openTransactions) {
      if (tx.isolation === 'serializable' && tx.snapshotSeq < keepAfter) keepAfter = tx.snapshotSeq;
    }
    let drop = 0;
    while (
      drop < this.recentCommits.length &&
      (this.recentCommits[drop]!.seq <= keepAfter || this.recentCommitRows > limits.recentCommitRowsMax)
    ) {
      this.recentCommitRows -= this.recentCommits[drop]!.rows.length;
      this.recentHorizonSeq = this.recentCommits[drop]!.seq;
      drop++;
    }
    if (drop > 0) this.recentCommits.splice(0, drop);
  }

  commitsAfter(seq: number): RecentCommit[] | null {
    if (seq < this.recentHorizonSeq) return null;
    // Recent commits ascend by seq: find the first after `seq` by bisection. An old snapshot held open elsewhere
    // (an abandoned transaction, until its idle timeout) keeps thousands of commits here; a scan paid for them all.
    let lo = 0;
    let hi = this.recentCommits.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.recentCommits[mid]!.seq <= seq) lo = mid + 1;
      else hi = mid;
    }
    return this.recentCommits.slice(lo);
  }

  async commitRows(writes: PendingWrite[]): Promise<number> {
    for (const write of writes) {
      const table = this.tables.get(write.table);
      if (table === undefined || table.def.createdSeq !== write.tableCreatedSeq) {
        throw new DriftError('table_not_found', `Table '${write.table}' was dropped while the transaction ran.`);
      }
    }
    const changes: Change[] = writes.map((w) => ({ kind: 'row', table: w.table, key: w.key, op: w.op, doc: w.json }));
    return this.commitChanges(
      changes,
      writes.map((w) => w.doc),
    );
  }

  // ---- TxHost ---------------------------------------------------------------------------------------------

  table(name: string): TableState {
    return this.readableTable(name);
  }

  acquireRowLock(owner: string, table: string, key: string): Promise<void> | true {
    return this.locks.acquire(owner, rowId(table, key));
  }

  releaseLocks(owner: string, reason?: Error): void {
    this.locks.releaseAll(owner, reason);
  }

  dirtyWrites(table: string): ReadonlyMap<string, string | null> {
    return this.dirty.get(table) ?? new Map();
  }

  setDirty(table: string, key: string, json: string | null | undefined): void {
    let writes = this.dirty.get(table);
    if (json === undefined) {
      writes?.delete(key);
      if (writes?.size === 0) this.dirty.delete(table);
      return;
    }
    if (writes === undefined) this.dirty.set(table, (writes = new Map()));
    writes.set(key, json);
  }

  transactionEnded(tx: TransactionImpl): void {
    this.openTransactions.delete(tx);
    // The commits kept for its validation go now, not at the next commit: after a bulk load of serializable
    // batches, the rows they wrote would otherwise stay referenced from here until some later write.
    if (tx.isolation === 'serializable') this.pruneRecentCommits();
  }

  countConflict(code: string): void {
    if (code === 'deadlock_detected') this.counters.deadlocks++;
    else if (code === 'serialization_failure' || code === 'lock_timeout') this.counters.conflicts++;
    else return;
    this.observer.conflict?.(code as ConflictCode); // metrics port
  }

  // ---- tables ---------------------------------------------------------------------------------------------

  /** A table visible to readers: created at or below the durable watermark. */
  private readableTable(name: string): TableState {
    const table = this.tables.get(name);
    if (table === undefined || table.def.createdSeq > this.visibleSeq) {
      throw new DriftError('table_not_found', `Table '${name}' does not exist.`);
    }
    return table;
  }

  private tableInfo(table: TableState): TableInfo {
    const { def } = table;
    return {
      name: def.name,
      primaryKey: def.primaryKey,
      indexes: [...def.indexes],
      ...(def.schema !== undefined ? { schema: def.schema } : {}),
      rowCount: table.liveRows,
      createdSeq: def.createdSeq,
    };
  }

  async createTable(input: CreateTableInput): Promise<TableInfo> {
    checkTableName(input.name);
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
    if (this.tables.has(input.name)) throw new DriftError('table_exists', `Table '${input.name}' already exists.`);
    if (this.tables.size >= limits.tablesMax) {
      throw new DriftError('validation_failed', `A database may hold at most ${limits.tablesMax} tables.`);
    }
    const change: Change = {
      kind: 'createTable',
      name: input.name,
      primaryKey: input.primaryKey,
      indexes,
      ...(input.schema !== undefined ? { schema: input.schema } : {}),
    };
    await this.commitChanges([change]);
    return this.tableInfo(this.requireTable(input.name));
  }

  listTables(): TableInfo[] {
    return [...this.tables.values()]
      .filter((t) => t.def.createdSeq <= this.visibleSeq)
      .sort((a, b) => (a.def.name < b.def.name ? -1 : 1))
      .map((t) => this.tableInfo(t));
  }

  getTable(name: string): TableInfo {
    return this.tableInfo(this.readableTable(name));
  }

  async dropTable(name: string): Promise<void> {
    this.readableTable(name);
    await this.commitChanges([{ kind: 'dropTable', name }]);
    // Pending writes to the dropped table can never commit: their transactions abort now and free their row
    // locks, which would otherwise hold rows of a table re-created under the same name.
    for (const tx of [...this.openTransactions]) tx.tableDropped(name);
  }

  async createIndex(tableName: string, field: string): Promise<TableInfo> {
    checkFieldPath(field);
    const table = this.readableTable(tableName);
    if (table.indexes.has(field)) throw new DriftError('index_exists', `Table '${tableName}' already has an index on '${field}'.`);
    if (table.indexes.size >= limits.indexesPerTableMax) {
      throw new DriftError('validation_failed', `A table may have at most ${limits.indexesPerTableMax} indexes.`);
    }
    await this.commitChanges([{ kind: 'createIndex', table: tableName, field }]);
    return this.tableInfo(this.requireTable(tableName));
  }

  async dropIndex(tableName: string, field: string): Promise<void> {
    const table = this.readableTable(tableName);
    if (!table.indexes.has(field)) throw new DriftError('not_found', `Table '${tableName}' has no index on '${field}'.`);
    await this.commitChanges([{ kind: 'dropIndex', table: tableName, field }]);
  }

  // ---- row writes -----------------------------------------------------------------------------------------

  put(input: PutInput): Promise<WriteResult> {
    return this.writeRow(input, { op: 'put', key: input.key, body: input.doc, ...conditions(input) });
  }

  patch(input: PatchInput): Promise<WriteResult> {
    return this.writeRow(input, { op: 'patch', key: input.key, body: input.patch, ...conditions(input) });
  }

  delete(input: DeleteInput): Promise<WriteResult> {
    return this.writeRow(input, { op: 'delete', key: input.key, ...conditions(input) });
  }

  private async writeRow(input: TxRef & { table: string }, request: RowWriteRequest): Promise<WriteResult> {
    if (input.tx !== undefined) {
      const { created } = await asImpl(input.tx).write(input.table, request);
      return { key: request.key, seq: null, created };
    }
    this.readableTable(input.table);
    this.checkWritable();
    const owner = `autocommit:${++this.autocommitCounter}`;
    const granted = this.acquireRowLock(owner, input.table, request.key);
    if (granted !== true) {
      await granted.catch((error: unknown) => {
        if (error instanceof DriftError) this.countConflict(error.code);
        throw error;
      });
    }
    try {
      const table = this.readableTable(input.table);
      const latest = table.latest(request.key);
      const computed = computeRowWrite(table, request, { json: latest?.json ?? null, seq: latest?.seq ?? null });
      const change: Change = { kind: 'row', table: input.table, key: request.key, op: computed.op, doc: computed.json };
      const seq = await this.commitChanges([change], [computed.doc]);
      return { key: request.key, seq, created: computed.created };
    } finally {
      this.locks.releaseAll(owner);
    }
  }

  // ---- reads ----------------------------------------------------------------------------------------------

  private resolveSeq(asOf: number | string | undefined, tx: Transaction | undefined): number {
    if (asOf !== undefined) return resolveAsOf(asOf, this.visibleSeq, (s) => this.tsOf(s));
    return tx === undefined ? this.visibleSeq : asImpl(tx).readSeq();
  }

  get(input: GetInput): RowRead {
    const table = this.readableTable(input.table);
    const notFound = (): never => {
      throw new DriftError('row_not_found', `Row '${input.key}' does not exist.`);
    };
    // Time travel inside a transaction reads the committed past and ignores the transaction's own writes.
    if (input.tx !== undefined && input.asOf === undefined) {
      const row = asImpl(input.tx).readRow(table, input.key);
      return row === null ? notFound() : new LazyRowRead(input.key, row.seq, row.json);
    }
    const seq = this.resolveSeq(input.asOf, input.tx);
    const version = table.versionAt(input.key, seq);
    if (version === undefined || version.json === null) return notFound();
    return new LazyRowRead(input.key, version.seq, version.json);
  }

  history(input: { table: string; key: string } & TxRef): HistoryResult {
    const table = this.readableTable(input.table);
    // Inside a transaction: the versions its reads see (its snapshot, or the newest for read_committed).
    const seq = input.tx === undefined ? this.visibleSeq : asImpl(input.tx).readHistory(table, input.key);
    const visible = (table.chain(input.key) ?? []).filter((v) => v.seq <= seq);
    checkHistoryBytes(table.def, input.key, visible);
    const versions = visible.map((v) => ({
      key: input.key,
      seq: v.seq,
      ts: this.tsOf(v.seq),
      op: v.op,
      doc: v.json === null ? null : (JSON.parse(v.json) as Doc),
    }));
    if (versions.length === 0) throw new DriftError('row_not_found', `Row '${input.key}' was never written.`);
    return { key: input.key, versions };
  }

  scan(input: ScanInput): Page {
    const spec: QuerySpec = { table: input.table };
    if (input.limit !== undefined) spec.limit = input.limit;
    if (input.cursor !== undefined) spec.cursor = input.cursor;
    if (input.asOf !== undefined) spec.asOf = input.asOf;
    return this.query(spec, input.tx === undefined ? {} : { tx: input.tx });
  }

  query(spec: QuerySpec, options: TxRef = {}): Page {
    const table = this.readableTable(spec.table);
    const compiled = compileQuery(spec, table.def);
    const source = this.sourceFor(table, spec, options.tx, compiled.predicate);
    // The page itself, its seq added: a page of stored documents parses its rows only if someone reads them.
    return Object.assign(executeQuery(compiled, source), { seq: source.seq });
  }

  explain(spec: QuerySpec): { plan: ReturnType<typeof planQuery> } {
    const table = this.readableTable(spec.table);
    const compiled = compileQuery(spec, table.def);
    return { plan: planQuery(compiled, this.sourceFor(table, spec, undefined, compiled.predicate)) };
  }

  // A cursor pins the snapshot of the first page; otherwise asOf, the transaction, or the newest state.
  private sourceFor(table: TableState, spec: QuerySpec, tx: Transaction | undefined, predicate: Predicate): RowSource {
    let seq: number;
    if (typeof spec.cursor === 'string') {
      seq = cursorSeq(spec.cursor);
      if (seq > this.visibleSeq) throw new DriftError('validation_failed', 'The cursor does not belong to this database.');
    } else {
      seq = this.resolveSeq(spec.asOf, tx);
    }
    if (tx !== undefined && spec.asOf === undefined) {
      // A history query reads committed versions only; serializable still validates what it matched.
      if (!spec.history) return asImpl(tx).source(table, seq, predicate);
      asImpl(tx).readPredicate(table, seq, predicate);
    }
    return new SnapshotSource(table, seq, (s) => this.tsOf(s));
  }

  // ---- transactions ---------------------------------------------------------------------------------------

  begin(input: BeginInput = {}): Transaction {
    this.checkWritable();
    const isolation = input.isolation ?? 'serializable';
    if (!isolationLevels.includes(isolation)) {
      throw new DriftError('validation_failed', `isolation must be one of ${isolationLevels.join(', ')}.`);
    }
    const tx = new TransactionImpl(this, { isolation, readOnly: input.readOnly === true });
    this.openTransactions.add(tx);
    return tx;
  }

  // ---- checkpoints, figures, shutdown ---------------------------------------------------------------------

  checkpoint(): Promise<{ seq: number }> {
    this.checkWritable();
    this.checkpointRunning ??= this.writeCheckpointNow().finally(() => {
      this.checkpointRunning = null;
    });
    return this.checkpointRunning;
  }

  private async writeCheckpointNow(): Promise<{ seq: number }> {
    const seq = this.lastSeq;
    const started = Date.now();
    const chunks = dumpCheckpoint({ seq, tables: [...this.tables.values()], tsOf: (s) => this.tsOf(s) });
    // Everything up to `seq` must be durable before a checkpoint may claim it.
    await this.lastAppend;
    this.checkWritable();
    const logBytes = this.wal!.bytes;
    const written = await writeCheckpoint({
      dir: join(this.options.dataDir, 'checkpoints'),
      seq,
      chunks,
      ...(this.options.fileSystem ? { fileSystem: this.options.fileSystem } : {}),
    });
    this.checkpointSeq = seq;
    this.checkpointLogBytes = logBytes;
    this.logger.info({ module: 'engine', seq, bytes: written.bytes, ms: Date.now() - started }, 'checkpoint written');
    this.observer.checkpointWritten?.({ seq, bytes: written.bytes, seconds: (Date.now() - started) / 1000 }); // metrics port
    return { seq };
  }

  private maybeCheckpoint(): void {
    const interval = this.options.checkpointIntervalBytes ?? limits.checkpointIntervalBytes;
    if (this.checkpointRunning !== null || this.wal!.bytes - this.checkpointLogBytes < interval) return;
    this.checkpoint().catch((error: unknown) => {
      this.logger.error({ module: 'engine', err: String(error) }, 'automatic checkpoint failed');
    });
  }

  stats(): EngineStats {
    let rows = 0;
    let versions = 0;
    for (const table of this.tables.values()) {
      rows += table.liveRows;
      versions += table.versionCount;
    }
    return {
      seq: this.visibleSeq,
      tables: this.tables.size,
      rows,
      versions,
      logBytes: this.wal?.bytes ?? 0,
      openTransactions: this.openTransactions.size,
      commits: this.counters.commits,
      conflicts: this.counters.conflicts,
      deadlocks: this.counters.deadlocks,
      checkpointSeq: this.checkpointSeq,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // A commit in flight finishes (or fails) with the log's last flush; every other open transaction rolls back.
    for (const tx of [...this.openTransactions]) if (!tx.committing) tx.rollback();
    await this.checkpointRunning?.catch(() => {});
    await this.wal?.close();
  }
}

function countRowChanges(changes: readonly Change[]): number {
  let rows = 0;
  for (const change of changes) if (change.kind === 'row') rows++;
  return rows;
}

/** Counts the records recovery replays and logs, at most every `intervalMs`, how far it got and how fast. */
class RecoveryProgress {
  records = 0;
  private bytes = 0;
  private readonly startedMs = Date.now();
  private lastLogMs = this.startedMs;

  constructor(
    private readonly logger: EngineLogger,
    private readonly intervalMs: number,
  ) {}

  replayed(seq: number, bytes: number): void {
    this.records++;
    this.bytes += bytes;
    // The clock is read every recoveryProgressCheckRecords records only: replay applies a million records a second.
    if (this.records % recoveryProgressCheckRecords !== 0) return;
    const now = Date.now();
    if (now - this.lastLogMs < this.intervalMs) return;
    this.lastLogMs = now;
    const seconds = Math.max(now - this.startedMs, 1) / 1000;
    const mib = this.bytes / MiB;
    this.logger.info(
      { module: 'engine', replayed: this.records, seq, mib: round1(mib), mibPerSecond: round1(mib / seconds), recordsPerSecond: Math.round(this.records / seconds) },
      'recovering',
    );
  }
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}

/** A read row whose document is parsed only if someone asks for it (a GET sends the stored text as it is). */
class LazyRowRead implements RowRead {
  private parsed: Doc | undefined;

  constructor(
    readonly key: string,
    readonly seq: number | null,
    readonly json: string,
  ) {}

  get doc(): Doc {
    this.parsed ??= JSON.parse(this.json) as Doc;
    return this.parsed;
  }
}

function conditions(input: { ifMatch?: number | '*'; ifNoneMatch?: boolean }): Pick<RowWriteRequest, 'ifMatch' | 'ifNoneMatch'> {
  const result: Pick<RowWriteRequest, 'ifMatch' | 'ifNoneMatch'> = {};
  if (input.ifMatch !== undefined) result.ifMatch = input.ifMatch;
  if (input.ifNoneMatch !== undefined) result.ifNoneMatch = input.ifNoneMatch;
  return result;
}

/** The text around one version's document in a history answer: its seq, ts, op, member names and punctuation. */
const historyVersionFrameBytes = 80;

/**
 * Refuses, before parsing any of it, a key's history whose answer would pass historyBytesMax. The route has no
 * pages, so the detail names the history query that pages through the same versions.
 */
function checkHistoryBytes(table: TableDef, key: string, versions: ReadonlyArray<{ json: string | null }>): void {
  let bytes = 0;
  for (const version of versions) bytes += historyVersionFrameBytes + (version.json?.length ?? 0);
  if (bytes <= limits.historyBytesMax) return;
  // The key's value as documents hold it (7, not "7"), read from its newest document, so the query matches.
  const newest = versions.findLast((version) => version.json !== null)?.json ?? null;
  const value = (newest === null ? undefined : extractPath(newest, [table.primaryKey])) ?? key;
  const query = JSON.stringify({ table: table.name, history: true, where: { [table.primaryKey]: value } });
  throw new DriftError(
    'bad_request',
    `The history of '${key}' is larger than historyBytesMax (${limits.historyBytesMax / MiB} MiB), too large for ` +
      `one answer; page through it with POST /v1/query and ${query}.`,
  );
}

function asImpl(tx: Transaction): TransactionImpl {
  if (!(tx instanceof TransactionImpl)) throw new DriftError('transaction_not_found', 'Unknown transaction.');
  return tx;
}

function checkTableName(name: unknown): void {
  if (typeof name !== 'string' || !tableNamePattern.test(name)) {
    throw new DriftError('validation_failed', 'A table name must match ^[A-Za-z_][A-Za-z0-9_]{0,62}$.');
  }
  if (name.startsWith('_')) throw new DriftError('validation_failed', 'Table names starting with _ are reserved.');
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

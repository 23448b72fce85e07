// A transaction: buffered writes under exclusive row locks, reads at the isolation level's snapshot, savepoints,
// and at commit the serializable validation of every row and predicate it read. An autocommit write is a
// one-write transaction through this same code.

import { randomUUID } from 'node:crypto';
import { assert } from '../../assert.js';
import { DriftError, isDriftError, retryableCodes } from '../../errors.js';
import { limits } from '../../limits.js';
import type {
  DeleteInput,
  GetInput,
  HistoryResult,
  Isolation,
  Page,
  PatchInput,
  PutInput,
  RowPolicies,
  RowPolicy,
  RowRead,
  Transaction,
  WriteConditions,
  WriteResult,
} from '../api.js';
import type { LockManager } from '../locks/lock-manager.js';
import { compileQuery, executeQuery, StoredRow, type QuerySpec, type RowSource } from '../query/index.js';
import type { DecisionContext, Decided, Store } from '../store.js';
import type { Change, Doc, RowOp } from '../types.js';
import { findConflict, rowId, type ConflictWindow, type Predicate, type RecentCommit } from './conflict-window.js';
import type { CommitOutcome, IdempotencyRequest } from './idempotency.js';
import { asOfSeq, cursorSnapshot, historyAt, LazyRowRead, readRowAt, rowNotFound } from './reads.js';
import type { TransactionRegistry } from './registry.js';
import { computeRowWrite, type ComputedWrite, type CurrentRow, type RowWriteRequest } from './row-write.js';
import { OverlaySource, SnapshotSource } from './sources.js';
import type { TableState } from './table-state.js';

/** A row write waiting for commit; the newest one per row wins. */
interface PendingWrite {
  table: string;
  key: string;
  op: RowOp;
  json: string | null;
  doc: Doc | null;
  /** createdSeq of the table written, so a drop and re-create in between is caught at commit. */
  tableCreatedSeq: number;
  /** Whether the write created the row. */
  created: boolean;
  /**
   * Cluster mode: the row's newest seq when the first of these requests was computed, and the requests, oldest
   * first. Row locks hold off this node's writers only; a commit from another node that changed the row since is
   * caught at commit, where the write is made again on the newer version (read committed) or fails (one snapshot).
   * A single node keeps no requests (its row locks are the whole story).
   */
  baseSeq: number | null;
  requests: RowWriteRequest[];
}

const noRequests: RowWriteRequest[] = [];

/** The parts of the engine a transaction works with; none of them knows about transactions' internals. */
export interface TransactionContext {
  readonly store: Store;
  readonly locks: LockManager;
  readonly conflicts: ConflictWindow;
  readonly registry: TransactionRegistry;
}

export interface TransactionOptions {
  isolation: Isolation;
  readOnly: boolean;
  /** The caller's row policies: every read and write of this transaction honours them. */
  policies?: RowPolicies | undefined;
  /** One write, committed at once by the caller: not registered as open, and named by a counter, not a UUID. */
  autocommit?: boolean;
  /** Rows it may write (default limits.transactionWritesMax); a restore writes as many as it must. */
  writesMax?: number;
}

let autocommitCounter = 0;

interface Savepoint {
  name: string;
  writes: Map<string, PendingWrite>;
  /** Idempotency entries of writes made before it. */
  idempotency: number;
}

export class TransactionImpl implements Transaction {
  readonly id: string;
  readonly isolation: Isolation;
  readonly readOnly: boolean;
  readonly snapshotSeq: number;
  state: Transaction['state'] = 'active';
  private readonly context: TransactionContext;
  private readonly store: Store;
  private readonly policies: RowPolicies | null;
  private readonly writesMax: number;
  private readonly autocommit: boolean;
  private writes = new Map<string, PendingWrite>();
  /** JSON text held by `writes`; bounded by what one commit record can carry. */
  private writesBytes = 0;
  /** Serializable only: rows read (table\0key), present or absent; any commit to one after the snapshot fails us. */
  private readonly reads = new Map<string, { table: string; key: string }>();
  private readonly predicates: Array<{ table: string; predicate: Predicate }> = [];
  private savepoints: Savepoint[] = [];
  /** Answers to writes made in this transaction with an Idempotency-Key: recorded with its commit, or never. */
  private idempotency: IdempotencyRequest[] = [];
  private commitInFlight = false;

  constructor(context: TransactionContext, options: TransactionOptions) {
    this.context = context;
    this.store = context.store;
    this.id = options.autocommit === true ? `autocommit:${++autocommitCounter}` : randomUUID();
    this.isolation = options.isolation;
    this.readOnly = options.readOnly;
    this.policies = options.policies ?? null;
    this.writesMax = options.writesMax ?? limits.transactionWritesMax;
    this.autocommit = options.autocommit === true;
    this.snapshotSeq = context.store.visibleSeq;
    if (options.autocommit !== true) context.registry.open.add(this);
  }

  get usesOneSnapshot(): boolean {
    return this.isolation === 'repeatable_read' || this.isolation === 'snapshot' || this.isolation === 'serializable';
  }

  /** True while commit validates and waits for its record to be durable: its outcome is not known yet. */
  get committing(): boolean {
    return this.commitInFlight;
  }

  get writeCount(): number {
    return this.writes.size;
  }

  /** The committed seq this transaction's reads see now. */
  readSeq(): number {
    return this.usesOneSnapshot ? this.snapshotSeq : this.store.visibleSeq;
  }

  checkActive(): void {
    if (this.state === 'aborted') {
      throw new DriftError('transaction_aborted', 'The transaction was aborted; roll it back and retry.');
    }
    if (this.state !== 'active' || this.commitInFlight) {
      throw new DriftError('transaction_not_found', 'The transaction has ended.');
    }
  }

  // ---- reads ----------------------------------------------------------------------------------------------

  /** A row as this transaction sees it; with `asOf`, the committed past (its own writes ignored). */
  get(input: GetInput): RowRead {
    const table = this.store.readableTable(input.table);
    const asOf = asOfSeq(this.store, input.asOf);
    if (asOf !== null) return readRowAt(table, input.key, asOf, this.policyOf(table));
    const row = this.readRow(table, input.key);
    return row === null ? rowNotFound(input.key) : new LazyRowRead(input.key, row.seq, row.json);
  }

  /** The committed history its reads see (its snapshot, or the newest for read_committed); own writes are not events yet. */
  history(input: { table: string; key: string }): HistoryResult {
    const table = this.store.readableTable(input.table);
    this.checkActive();
    this.recordRead(table, input.key);
    return historyAt(this.store, table, input.key, this.readSeq(), this.policyOf(table));
  }

  /** A query (or a page of rows) as this transaction sees it; with `asOf`, the committed past. */
  query(spec: QuerySpec): Page {
    const table = this.store.readableTable(spec.table);
    const compiled = compileQuery(spec, table.def);
    const seq = cursorSnapshot(this.store, spec) ?? asOfSeq(this.store, spec.asOf) ?? this.readSeq();
    let source: RowSource;
    const policy = this.policyOf(table);
    if (spec.asOf !== undefined) {
      source = new SnapshotSource(table, seq, (s) => this.store.tsOf(s), policy);
    } else if (spec.history !== true) {
      source = this.source(table, seq, compiled.predicate);
    } else {
      // A history query reads committed versions only; serializable still validates what it matched.
      this.readPredicate(table, seq, compiled.predicate);
      source = new SnapshotSource(table, seq, (s) => this.store.tsOf(s), policy);
    }
    return Object.assign(executeQuery(compiled, source), { seq: source.seq });
  }

  /** The row policy of this transaction's caller on `table`, or null. */
  private policyOf(table: TableState): RowPolicy | null {
    return this.policies?.forTable(table.def.name) ?? null;
  }

  /** Reads one row as this transaction sees it (its own writes first); null when absent or hidden by its policy. */
  private readRow(table: TableState, key: string): { json: string; seq: number | null } | null {
    const row = this.readRowUnfiltered(table, key);
    const policy = this.policyOf(table);
    return row === null || policy === null || policy.read(new StoredRow(key, row.json)) ? row : null;
  }

  private readRowUnfiltered(table: TableState, key: string): { json: string; seq: number | null } | null {
    this.checkActive();
    const own = this.writes.get(rowId(table.def.name, key));
    if (own !== undefined) return own.json === null ? null : { json: own.json, seq: null };
    if (this.isolation === 'read_uncommitted') {
      const dirty = this.context.registry.dirtyWrites(table.def.name);
      if (dirty.has(key)) {
        const json = dirty.get(key)!;
        return json === null ? null : { json, seq: null };
      }
    }
    const version = table.versionAt(key, this.readSeq());
    this.recordRead(table, key);
    return version === undefined || version.json === null ? null : { json: version.json, seq: version.seq };
  }

  private recordRead(table: TableState, key: string): void {
    if (this.isolation === 'serializable') this.reads.set(rowId(table.def.name, key), { table: table.def.name, key });
  }

  /** A RowSource for queries and scans inside this transaction at `seq`, recording the predicate read. */
  private source(table: TableState, seq: number, predicate: Predicate): OverlaySource {
    this.readPredicate(table, seq, predicate);
    const overlay = new Map<string, string | null>();
    if (this.isolation === 'read_uncommitted') {
      for (const [key, json] of this.context.registry.dirtyWrites(table.def.name)) overlay.set(key, json);
    }
    for (const write of this.writes.values()) {
      if (write.table === table.def.name) overlay.set(write.key, write.json);
    }
    const policy = this.policyOf(table);
    return new OverlaySource(new SnapshotSource(table, seq, (s) => this.store.tsOf(s), policy), overlay, policy);
  }

  /** Records a query's predicate read at `seq`, for serializable validation at commit. */
  private readPredicate(table: TableState, seq: number, predicate: Predicate): void {
    this.checkActive();
    if (this.isolation === 'serializable' && seq === this.snapshotSeq) {
      this.predicates.push({ table: table.def.name, predicate });
    }
  }

  // ---- writes ---------------------------------------------------------------------------------------------

  put(input: PutInput): Promise<WriteResult> {
    return this.write(input.table, { op: 'put', key: input.key, body: input.doc, ...conditions(input) }, input.idempotency);
  }

  patch(input: PatchInput): Promise<WriteResult> {
    return this.write(input.table, { op: 'patch', key: input.key, body: input.patch, ...conditions(input) }, input.idempotency);
  }

  delete(input: DeleteInput): Promise<WriteResult> {
    return this.write(input.table, { op: 'delete', key: input.key, ...conditions(input) }, input.idempotency);
  }

  /** Buffers one row write after taking its lock; answers whether it created the row (seq null until commit). */
  private async write(tableName: string, request: RowWriteRequest, idempotency?: IdempotencyRequest): Promise<WriteResult> {
    this.checkActive();
    if (this.readOnly) throw new DriftError('read_only', 'The transaction is read-only.');
    const id = rowId(tableName, request.key);
    if (!this.writes.has(id) && this.writes.size >= this.writesMax) {
      throw new DriftError('validation_failed', `A transaction may write at most ${this.writesMax} rows.`);
    }
    this.store.readableTable(tableName);
    this.store.checkWritable();
    await this.lockRow(tableName, request.key);
    this.checkActive();
    const table = this.store.readableTable(tableName);
    const current = this.currentRow(table, request.key);
    const computed = this.computeWrite(table, request, current);
    const own = this.writes.get(id);
    const bytes = this.writesBytes - pendingBytes(own) + (computed.json?.length ?? 0) + request.key.length;
    if (bytes > limits.recordBytesMax) {
      throw new DriftError(
        'validation_failed',
        `This write would take the transaction's pending writes past ${limits.recordBytesMax} bytes, the most one commit can hold.`,
      );
    }
    const write: PendingWrite = {
      table: tableName,
      key: request.key,
      op: computed.op,
      json: computed.json,
      doc: computed.doc,
      tableCreatedSeq: table.def.createdSeq,
      created: computed.created,
      baseSeq: own !== undefined ? own.baseSeq : current.seq,
      requests: !this.store.replicated ? noRequests : own !== undefined ? [...own.requests, request] : [request],
    };
    this.writes.set(id, write);
    this.writesBytes = bytes;
    this.context.registry.setDirty(tableName, request.key, computed.json);
    // The answer to replay names whether this write created the row and the commit's seq, known later. An autocommit
    // write is answered after its commit, so it names what the commit made of it (in cluster mode it may be made again).
    if (idempotency !== undefined) {
      const created = computed.created;
      // Fields named, not spread: the spreads' generic copy (CopyDataProperties) showed in the keyed write's instruction
      // profile. A row write's outcome has no table (that is a fork's).
      const answer = (outcome: CommitOutcome): string =>
        idempotency.answer({ seq: outcome.seq, rowsWritten: outcome.rowsWritten, created: this.autocommit ? write.created : created });
      const entry = { user: idempotency.user, key: idempotency.key, fingerprint: idempotency.fingerprint, expiresAt: idempotency.expiresAt, answer };
      // The first as a one-slot array: a push onto an empty one reserved 17 slots, on every keyed write.
      if (this.idempotency.length === 0) this.idempotency = [entry];
      else this.idempotency.push(entry);
    }
    return { key: request.key, seq: null, created: computed.created };
  }

  /** The document a write leaves, its conditions and the caller's row policy checked against the row as it is. */
  private computeWrite(table: TableState, request: RowWriteRequest, current: CurrentRow): ComputedWrite {
    const policy = this.policyOf(table);
    if (policy !== null) checkCurrentAgainstPolicy(policy, request, current);
    const computed = computeRowWrite(table, request, current);
    if (policy !== null && computed.doc !== null && !policy.write(computed.doc)) {
      throw new DriftError('forbidden', `A row policy of table '${table.def.name}' does not allow this document.`);
    }
    return computed;
  }

  /** Whether the one write of an autocommit transaction created its row, as its commit made it. */
  get autocommitCreated(): boolean | undefined {
    return this.writes.size === 1 ? this.writes.values().next().value!.created : undefined;
  }

  private async lockRow(table: string, key: string): Promise<void> {
    const granted = this.context.locks.acquire(this.id, rowId(table, key));
    if (granted === true) return;
    try {
      await granted;
    } catch (error) {
      this.failWith(error);
    }
  }

  // With the row locked, nobody else can change it until we end: what we check now holds at commit.
  private currentRow(table: TableState, key: string): CurrentRow {
    const own = this.writes.get(rowId(table.def.name, key));
    const latest = table.latest(key);
    if (this.usesOneSnapshot && latest !== undefined && latest.seq > this.snapshotSeq) {
      this.failWith(
        new DriftError('serialization_failure', `Row '${key}' was changed by a transaction that committed after this one began.`, {
          retryable: true,
        }),
      );
    }
    if (own !== undefined) return { json: own.json, seq: latest?.seq ?? null };
    return { json: latest?.json ?? null, seq: latest?.seq ?? null };
  }

  async commit(options: { idempotency?: IdempotencyRequest } = {}): Promise<{ seq: number | null }> {
    this.checkActive();
    this.commitInFlight = true;
    try {
      const writes = [...this.writes.values()];
      const idempotency = options.idempotency === undefined ? this.idempotency : [...this.idempotency, options.idempotency];
      // A commit that wrote nothing answers seq null; an idempotency key sent with it still needs a record of its own.
      const committed =
        writes.length > 0 || idempotency.length > 0 ? await this.store.commit((context) => this.decide(writes, idempotency, context)) : null;
      const seq = writes.length === 0 ? null : committed;
      this.end('committed');
      return { seq };
    } catch (error) {
      this.commitInFlight = false;
      if (isDriftError(error) && retryableCodes.has(error.code)) this.failWith(error);
      if (isDriftError(error) && error.code === 'unavailable') this.end('aborted');
      throw error;
    }
  }

  /**
   * The commit decision: one record of every pending write, against the state applied now. A table dropped (or
   * re-created) meanwhile fails it, and so does a serializable read that no longer holds.
   */
  private decide(writes: PendingWrite[], idempotency: readonly IdempotencyRequest[], context: DecisionContext): Decided {
    // Only a commit that writes needs its reads validated. Every serializable writer validates that its reads
    // held up to its own commit, so writers serialize in commit order, and a snapshot is a prefix of that
    // order: a transaction that only read saw a state of the serial history, whatever committed after it.
    if (this.isolation === 'serializable' && writes.length > 0) this.validateReads(context.pending);
    for (const write of writes) {
      const table = this.store.tables.get(write.table);
      if (table === undefined || table.def.createdSeq !== write.tableCreatedSeq) {
        throw new DriftError('table_not_found', `Table '${write.table}' was dropped while the transaction ran.`);
      }
      if (this.store.replicated) this.recheckWrite(table, write);
    }
    const changes: Change[] = writes.map((w) => ({ kind: 'row', table: w.table, key: w.key, op: w.op, doc: w.json }));
    return { changes, docs: writes.map((w) => w.doc), idempotency };
  }

  /**
   * Cluster mode: another node may have committed to a row this transaction wrote (our row lock does not stop it).
   * One snapshot: first committer wins, as on one node. Read committed: the write is made again from its requests on
   * the row's newest version (a patch merges into it, conditions are checked again), as PostgreSQL re-evaluates an
   * update on the newest version; inside an interactive transaction a write that no longer applies fails the commit
   * with serialization_failure, since the client was already told it succeeded.
   */
  private recheckWrite(table: TableState, write: PendingWrite): void {
    const newest = table.latest(write.key);
    const newestSeq = newest?.seq ?? null;
    if (newestSeq === write.baseSeq) return;
    const changed = `Row '${write.key}' was changed by a transaction that committed after this one began.`;
    if (this.usesOneSnapshot) throw new DriftError('serialization_failure', changed, { retryable: true });
    let current: CurrentRow = { json: newest?.json ?? null, seq: newestSeq };
    let computed: ComputedWrite | null = null;
    try {
      for (const request of write.requests) {
        computed = this.computeWrite(table, request, current);
        current = { json: computed.json, seq: newestSeq };
      }
    } catch (error) {
      if (this.autocommit) throw error;
      const why = error instanceof Error ? error.message : String(error);
      throw new DriftError('serialization_failure', `${changed} Its write no longer applies: ${why}`, { retryable: true });
    }
    write.op = computed!.op;
    write.json = computed!.json;
    write.doc = computed!.doc;
    write.created = computed!.created;
    write.baseSeq = newestSeq;
    this.context.registry.setDirty(write.table, write.key, write.json);
  }

  rollback(): void {
    // The commit in flight decides how this transaction ends; its caller waits for that (TransactionService).
    assert(!this.commitInFlight, 'no rollback while a commit is in flight');
    if (this.state === 'active' || this.state === 'aborted') this.end('rolled_back');
  }

  savepoint(name: string): void {
    this.checkActive();
    this.savepoints = this.savepoints.filter((s) => s.name !== name);
    this.savepoints.push({ name, writes: new Map(this.writes), idempotency: this.idempotency.length });
  }

  rollbackToSavepoint(name: string): void {
    this.checkActive();
    const savepoint = this.findSavepoint(name);
    for (const [id, write] of this.writes) {
      const before = savepoint.writes.get(id);
      if (before !== write) this.context.registry.setDirty(write.table, write.key, before === undefined ? undefined : before.json);
    }
    this.writes = new Map(savepoint.writes);
    this.idempotency = this.idempotency.slice(0, savepoint.idempotency);
    this.writesBytes = [...this.writes.values()].reduce((sum, write) => sum + pendingBytes(write), 0);
    this.savepoints = this.savepoints.slice(0, this.savepoints.indexOf(savepoint) + 1);
  }

  releaseSavepoint(name: string): void {
    this.checkActive();
    const savepoint = this.findSavepoint(name);
    this.savepoints = this.savepoints.slice(0, this.savepoints.indexOf(savepoint));
  }

  /** Ends the transaction as aborted (retryable failures) and rethrows the cause. */
  failWith(error: unknown): never {
    if (this.state === 'active') {
      if (isDriftError(error)) this.context.registry.countConflict(error.code);
      this.end('aborted');
    }
    throw error;
  }

  /** Ends an abandoned transaction (idle expiry, shutdown) and wakes its lock wait, if any. */
  expire(reason: Error): void {
    if (this.state !== 'active' || this.commitInFlight) return;
    this.state = 'aborted';
    for (const write of this.writes.values()) this.context.registry.setDirty(write.table, write.key, undefined);
    this.context.locks.releaseAll(this.id, reason);
    this.context.registry.ended(this);
  }

  /** Aborts the transaction when it has pending writes to the dropped table `name`: they can never commit. */
  tableDropped(name: string): void {
    if (![...this.writes.values()].some((write) => write.table === name)) return;
    this.expire(new DriftError('transaction_aborted', `Table '${name}' was dropped; this transaction's writes to it cannot commit.`));
  }

  private findSavepoint(name: string): Savepoint {
    const savepoint = this.savepoints.find((s) => s.name === name);
    if (savepoint === undefined) throw new DriftError('not_found', `Savepoint '${name}' does not exist.`);
    return savepoint;
  }

  // Serializable: fail when a row or a predicate this transaction read was changed by a commit after its
  // snapshot. The decision depends only on the committed log and on this transaction's read/write sets.
  private validateReads(pending: readonly RecentCommit[]): void {
    if (this.reads.size === 0 && this.predicates.length === 0) return;
    const after = this.context.conflicts.after(this.snapshotSeq);
    const commits = after === null || pending.length === 0 ? after : [...after, ...pending];
    const conflict =
      this.tableReplaced() ??
      (commits === null ? 'history' : findConflict(commits, this.reads, this.predicates, (t, k) => this.seenAtSnapshot(t, k)));
    if (conflict !== null) {
      throw new DriftError('serialization_failure', `A row or query this transaction read was changed concurrently (${conflict}).`, {
        retryable: true,
      });
    }
  }

  /** A table read was dropped (or dropped and re-created) after the snapshot: every read of it changed. */
  private tableReplaced(): string | null {
    const tables = new Set([...this.reads.values()].map((read) => read.table));
    for (const { table } of this.predicates) tables.add(table);
    for (const name of tables) {
      const createdSeq = this.tableCreatedSeq(name);
      if (createdSeq === null || createdSeq > this.snapshotSeq) return `table '${name}' was dropped`;
    }
    return null;
  }

  private tableCreatedSeq(name: string): number | null {
    const table = this.store.tables.get(name);
    return table === undefined || table.def.createdSeq > this.store.visibleSeq ? null : table.def.createdSeq;
  }

  private seenAtSnapshot(table: string, key: string): Doc | null {
    const state = this.store.tables.get(table);
    if (state === undefined) return null;
    const json = state.versionAt(key, this.snapshotSeq)?.json ?? null;
    return json === null ? null : (JSON.parse(json) as Doc);
  }

  private end(outcome: 'committed' | 'rolled_back' | 'aborted'): void {
    assert(this.state === 'active' || outcome === 'rolled_back', 'a transaction ends once');
    const wasActive = this.state === 'active';
    this.state = outcome;
    for (const write of this.writes.values()) this.context.registry.setDirty(write.table, write.key, undefined);
    this.context.locks.releaseAll(this.id);
    if (wasActive) this.context.registry.ended(this);
  }
}

/** What a pending write holds in memory and will put into the commit record: its document text and key. */
function pendingBytes(write: PendingWrite | undefined): number {
  return write === undefined ? 0 : (write.json?.length ?? 0) + write.key.length;
}

/**
 * The row policy's rules for the row as it is (http-api.md §8): a patch or delete of a row the caller cannot read is
 * refused as if the row were missing (a policy never reveals that a row exists); any write to a row whose current
 * document the write policy does not admit is forbidden.
 */
function checkCurrentAgainstPolicy(policy: RowPolicy, request: RowWriteRequest, current: CurrentRow): void {
  if (current.json === null) return;
  const row = new StoredRow(request.key, current.json);
  if (request.op !== 'put' && !policy.read(row)) throw new DriftError('row_not_found', `Row '${request.key}' does not exist.`);
  if (!policy.write(row)) throw new DriftError('forbidden', `A row policy does not allow changing row '${request.key}'.`);
}

function conditions(input: WriteConditions): Pick<RowWriteRequest, 'ifMatch' | 'ifNoneMatch'> {
  const result: Pick<RowWriteRequest, 'ifMatch' | 'ifNoneMatch'> = {};
  if (input.ifMatch !== undefined) result.ifMatch = input.ifMatch;
  if (input.ifNoneMatch !== undefined) result.ifNoneMatch = input.ifNoneMatch;
  return result;
}

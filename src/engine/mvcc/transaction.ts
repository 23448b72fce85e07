// An interactive transaction: buffered writes under exclusive row locks, reads at the isolation level's
// snapshot, savepoints, and at commit the serializable validation of every row and predicate it read.

import { randomUUID } from 'node:crypto';
import { assert } from '../../assert.js';
import { DriftError, isDriftError, retryableCodes } from '../../errors.js';
import { limits } from '../../limits.js';
import type { Isolation, Transaction } from '../api.js';
import type { Doc, RowOp } from '../types.js';
import { computeRowWrite, type CurrentRow, type RowWriteRequest } from './row-write.js';
import { OverlaySource, SnapshotSource } from './sources.js';
import type { TableState } from './table-state.js';

/** A row write waiting for commit; the newest one per row wins. */
export interface PendingWrite {
  table: string;
  key: string;
  op: RowOp;
  json: string | null;
  doc: Doc | null;
  /** createdSeq of the table written, so a drop and re-create in between is caught at commit. */
  tableCreatedSeq: number;
}

/** A row change of a committed transaction, kept while a serializable transaction may need to validate it. */
export interface CommittedRowChange {
  table: string;
  key: string;
  /** rowId(table, key), made once per commit: every serializable commit after it looks it up. */
  id: string;
  json: string | null;
}

export interface RecentCommit {
  seq: number;
  rows: CommittedRowChange[];
}

/** What a transaction needs from the database; implemented by database.ts. */
export interface TxHost {
  readonly durableSeq: number;
  tsOf(seq: number): number;
  table(name: string): TableState;
  acquireRowLock(owner: string, table: string, key: string): Promise<void> | true;
  /** Releases every lock of `owner`; a lock wait it still has is rejected with `reason`. */
  releaseLocks(owner: string, reason?: Error): void;
  commitRows(writes: PendingWrite[]): Promise<number>;
  /** Other transactions' uncommitted writes to a table (for read_uncommitted). */
  dirtyWrites(table: string): ReadonlyMap<string, string | null>;
  setDirty(table: string, key: string, json: string | null | undefined): void;
  /** Commits after `seq`, oldest first; null when they are no longer all kept. */
  commitsAfter(seq: number): RecentCommit[] | null;
  transactionEnded(tx: TransactionImpl): void;
  countConflict(code: string): void;
}

type Predicate = (doc: Doc) => boolean;

interface Savepoint {
  name: string;
  writes: Map<string, PendingWrite>;
}

export class TransactionImpl implements Transaction {
  readonly id: string;
  readonly isolation: Isolation;
  readonly readOnly: boolean;
  readonly snapshotSeq: number;
  state: Transaction['state'] = 'active';
  private readonly host: TxHost;
  private writes = new Map<string, PendingWrite>();
  /** JSON text held by `writes`; bounded by what one commit record can carry. */
  private writesBytes = 0;
  /** Serializable only: rows read (table\0key), present or absent; any commit to one after the snapshot fails us. */
  private readonly reads = new Map<string, { table: string; key: string }>();
  private readonly predicates: Array<{ table: string; predicate: Predicate }> = [];
  private savepoints: Savepoint[] = [];
  private commitInFlight = false;

  constructor(host: TxHost, options: { isolation: Isolation; readOnly: boolean }) {
    this.host = host;
    this.id = randomUUID();
    this.isolation = options.isolation;
    this.readOnly = options.readOnly;
    this.snapshotSeq = host.durableSeq;
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
    return this.usesOneSnapshot ? this.snapshotSeq : this.host.durableSeq;
  }

  checkActive(): void {
    if (this.state === 'aborted') {
      throw new DriftError('transaction_aborted', 'The transaction was aborted; roll it back and retry.');
    }
    if (this.state !== 'active' || this.commitInFlight) {
      throw new DriftError('transaction_not_found', 'The transaction has ended.');
    }
  }

  /** Reads one row as this transaction sees it: its own writes first. Null when absent. */
  readRow(table: TableState, key: string): { json: string; seq: number | null } | null {
    this.checkActive();
    const own = this.writes.get(rowId(table.def.name, key));
    if (own !== undefined) return own.json === null ? null : { json: own.json, seq: null };
    if (this.isolation === 'read_uncommitted') {
      const dirty = this.host.dirtyWrites(table.def.name);
      if (dirty.has(key)) {
        const json = dirty.get(key)!;
        return json === null ? null : { json, seq: null };
      }
    }
    const version = table.versionAt(key, this.readSeq());
    this.recordRead(table, key);
    return version === undefined || version.json === null ? null : { json: version.json, seq: version.seq };
  }

  /** The seq a read of `key`'s history sees; serializable records it as a read of the row. */
  readHistory(table: TableState, key: string): number {
    this.checkActive();
    this.recordRead(table, key);
    return this.readSeq();
  }

  private recordRead(table: TableState, key: string): void {
    if (this.isolation === 'serializable') this.reads.set(rowId(table.def.name, key), { table: table.def.name, key });
  }

  /** A RowSource for queries and scans inside this transaction at `seq`, recording the predicate read. */
  source(table: TableState, seq: number, predicate: Predicate): OverlaySource {
    this.readPredicate(table, seq, predicate);
    const overlay = new Map<string, string | null>();
    if (this.isolation === 'read_uncommitted') {
      for (const [key, json] of this.host.dirtyWrites(table.def.name)) overlay.set(key, json);
    }
    for (const write of this.writes.values()) {
      if (write.table === table.def.name) overlay.set(write.key, write.json);
    }
    return new OverlaySource(new SnapshotSource(table, seq, (s) => this.host.tsOf(s)), overlay);
  }

  /** Records a query's predicate read at `seq`, for serializable validation at commit. */
  readPredicate(table: TableState, seq: number, predicate: Predicate): void {
    this.checkActive();
    if (this.isolation === 'serializable' && seq === this.snapshotSeq) {
      this.predicates.push({ table: table.def.name, predicate });
    }
  }

  /** Buffers one row write after taking its lock; answers whether it created the row. */
  async write(tableName: string, request: RowWriteRequest): Promise<{ created: boolean }> {
    this.checkActive();
    if (this.readOnly) throw new DriftError('read_only', 'The transaction is read-only.');
    const id = rowId(tableName, request.key);
    if (!this.writes.has(id) && this.writes.size >= limits.transactionWritesMax) {
      throw new DriftError('validation_failed', `A transaction may write at most ${limits.transactionWritesMax} rows.`);
    }
    this.host.table(tableName);
    await this.lockRow(tableName, request.key);
    this.checkActive();
    const table = this.host.table(tableName);
    const current = this.currentRow(table, request.key);
    const computed = computeRowWrite(table, request, current);
    const bytes = this.writesBytes - pendingBytes(this.writes.get(id)) + (computed.json?.length ?? 0) + request.key.length;
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
    };
    this.writes.set(id, write);
    this.writesBytes = bytes;
    this.host.setDirty(tableName, request.key, computed.json);
    return { created: computed.created };
  }

  private async lockRow(table: string, key: string): Promise<void> {
    const granted = this.host.acquireRowLock(this.id, table, key);
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

  async commit(): Promise<{ seq: number | null }> {
    this.checkActive();
    this.commitInFlight = true;
    try {
      const writes = [...this.writes.values()];
      // Only a commit that writes needs its reads validated. Every serializable writer validates that its reads
      // held up to its own commit, so writers serialize in commit order, and a snapshot is a prefix of that
      // order: a transaction that only read saw a state of the serial history, whatever committed after it.
      if (this.isolation === 'serializable' && writes.length > 0) this.validateReads();
      const seq = writes.length === 0 ? null : await this.host.commitRows(writes);
      this.end('committed');
      return { seq };
    } catch (error) {
      this.commitInFlight = false;
      if (isDriftError(error) && retryableCodes.has(error.code)) this.failWith(error);
      if (isDriftError(error) && error.code === 'unavailable') this.end('aborted');
      throw error;
    }
  }

  rollback(): void {
    // The commit in flight decides how this transaction ends; its caller waits for that (TransactionService).
    assert(!this.commitInFlight, 'no rollback while a commit is in flight');
    if (this.state === 'active' || this.state === 'aborted') this.end('rolled_back');
  }

  savepoint(name: string): void {
    this.checkActive();
    this.savepoints = this.savepoints.filter((s) => s.name !== name);
    this.savepoints.push({ name, writes: new Map(this.writes) });
  }

  rollbackToSavepoint(name: string): void {
    this.checkActive();
    const savepoint = this.findSavepoint(name);
    for (const [id, write] of this.writes) {
      const before = savepoint.writes.get(id);
      if (before !== write) this.host.setDirty(write.table, write.key, before === undefined ? undefined : before.json);
    }
    this.writes = new Map(savepoint.writes);
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
      if (isDriftError(error)) this.host.countConflict(error.code);
      this.end('aborted');
    }
    throw error;
  }

  /** Ends an abandoned transaction (idle expiry, shutdown) and wakes its lock wait, if any. */
  expire(reason: Error): void {
    if (this.state !== 'active' || this.commitInFlight) return;
    this.state = 'aborted';
    for (const write of this.writes.values()) this.host.setDirty(write.table, write.key, undefined);
    this.host.releaseLocks(this.id, reason);
    this.host.transactionEnded(this);
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
  private validateReads(): void {
    if (this.reads.size === 0 && this.predicates.length === 0) return;
    const commits = this.host.commitsAfter(this.snapshotSeq);
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
    try {
      return this.host.table(name).def.createdSeq;
    } catch {
      return null;
    }
  }

  private seenAtSnapshot(table: string, key: string): Doc | null {
    let state: TableState;
    try {
      state = this.host.table(table);
    } catch {
      return null;
    }
    const json = state.versionAt(key, this.snapshotSeq)?.json ?? null;
    return json === null ? null : (JSON.parse(json) as Doc);
  }

  private end(outcome: 'committed' | 'rolled_back' | 'aborted'): void {
    assert(this.state === 'active' || outcome === 'rolled_back', 'a transaction ends once');
    const wasActive = this.state === 'active';
    this.state = outcome;
    for (const write of this.writes.values()) this.host.setDirty(write.table, write.key, undefined);
    this.host.releaseLocks(this.id);
    if (wasActive) this.host.transactionEnded(this);
  }
}

/** What a pending write holds in memory and will put into the commit record: its document text and key. */
function pendingBytes(write: PendingWrite | undefined): number {
  return write === undefined ? 0 : (write.json?.length ?? 0) + write.key.length;
}

export function rowId(table: string, key: string): string {
  return `${table}\u0000${key}`;
}

/** Pure: the first committed change that invalidates a read (row or predicate), described, or null. */
function findConflict(
  commits: readonly RecentCommit[],
  reads: ReadonlyMap<string, { table: string; key: string }>,
  predicates: ReadonlyArray<{ table: string; predicate: Predicate }>,
  seenAtSnapshot: (table: string, key: string) => Doc | null,
): string | null {
  for (const commit of commits) {
    for (const change of commit.rows) {
      if (reads.has(change.id)) return `row '${change.key}' of '${change.table}' at seq ${commit.seq}`;
      for (const { table, predicate } of predicates) {
        if (table !== change.table) continue;
        const after = change.json === null ? null : (JSON.parse(change.json) as Doc);
        const before = seenAtSnapshot(change.table, change.key);
        if ((after !== null && predicate(after)) || (before !== null && predicate(before))) {
          return `a query over '${table}' at seq ${commit.seq}`;
        }
      }
    }
  }
  return null;
}

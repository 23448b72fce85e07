// The engine's public surface as the rest of DriftDB sees it: the Database façade and its value types.

import type { ChangesInput, ChangesPage } from './feed.js';
import type { DiffInput, DiffPage } from './time-travel.js';
import type { IdempotencyEntry, IdempotencyRequest } from './mvcc/idempotency.js';
import type { Plan, QueryPage, QuerySpec } from './query/spec.js';
import type { Predicate } from './query/where.js';
import type { Doc, HistoryEntry, TableDef } from './types.js';

export type Isolation = 'read_uncommitted' | 'read_committed' | 'repeatable_read' | 'snapshot' | 'serializable';
export const isolationLevels: readonly Isolation[] = [
  'read_uncommitted',
  'read_committed',
  'repeatable_read',
  'snapshot',
  'serializable',
];

export interface ForkInput extends IdempotentWrite {
  /** The table forked. */
  table: string;
  /** The new table's name. */
  name: string;
  asOf: AsOf;
}

export interface RestoreInput extends TxRef, IdempotentWrite {
  table: string;
  asOf: AsOf;
}

export interface TableInfo extends TableDef {
  /** Live rows at the newest committed state. */
  rowCount: number;
}

export interface CreateTableInput {
  name: string;
  primaryKey: string;
  indexes?: string[];
  schema?: Doc;
}

/** How a table is created: `system` tables (names starting with "_") belong to DriftDB itself, not to clients. */
export interface CreateTableOptions {
  system?: boolean;
}

/** `asOf` as a client sent it: a seq (number or decimal string) or an RFC 3339 instant. */
export type AsOf = number | string;

/** A conditional write: `ifMatch` a version seq (or '*' = the row exists), `ifNoneMatch` = the row must not exist. */
export interface WriteConditions {
  ifMatch?: number | '*';
  ifNoneMatch?: boolean;
}

/**
 * What one caller may see and change of one table's rows (http-api.md §8, row policies). The predicates are the
 * engine's compiled where-clauses (query/index.ts compileWhere); both see a version's whole document.
 */
export interface RowPolicy {
  /** The caller sees a version only if its document satisfies this (a delete: if the version before it is seen). */
  read: Predicate;
  /** A write is allowed only if the row's current document (when it has one) and the new one satisfy this. */
  write: Predicate;
}

/** A caller's row policies: per table, or null where none restricts them. */
export interface RowPolicies {
  forTable(table: string): RowPolicy | null;
}

export interface TxRef {
  /** The open transaction to run in; absent = autocommit. */
  tx?: Transaction;
  /**
   * The caller's row policies, for an autocommit request or a committed read; inside a transaction, the policies
   * it began with apply instead.
   */
  policies?: RowPolicies;
}

/** An Idempotency-Key's entry for one write: its answer is recorded with the commit that makes the write. */
export interface IdempotentWrite {
  idempotency?: IdempotencyRequest;
}

export interface PutInput extends WriteConditions, TxRef, IdempotentWrite {
  table: string;
  key: string;
  doc: unknown;
}

export interface PatchInput extends WriteConditions, TxRef, IdempotentWrite {
  table: string;
  key: string;
  patch: unknown;
}

export interface DeleteInput extends WriteConditions, TxRef, IdempotentWrite {
  table: string;
  key: string;
}

export interface WriteResult {
  key: string;
  /** Seq of the commit; inside a transaction, null until it commits. */
  seq: number | null;
  /** True when the row did not exist before this write. */
  created: boolean;
}

export interface GetInput extends TxRef {
  table: string;
  key: string;
  asOf?: AsOf;
}

export interface RowRead {
  key: string;
  /** Seq of the version read (its ETag); null for a transaction's own uncommitted write. */
  seq: number | null;
  doc: Doc;
  /** The document as stored JSON text (send it as is to avoid a re-serialization). */
  json: string;
}

export interface ScanInput extends TxRef {
  table: string;
  limit?: number;
  cursor?: string | null;
  asOf?: AsOf;
}

/** A page of rows (http-api.md §4, §5): the executor's page and the snapshot it was read at. */
export interface Page extends QueryPage {
  /** The snapshot the page was read at. */
  seq: number;
}

export interface HistoryResult {
  key: string;
  versions: StoredVersion[];
}

/** A version of a key's history with its document as the stored JSON text (null for a delete); `doc` parses it. */
export interface StoredVersion extends HistoryEntry {
  readonly json: string | null;
}

export interface BeginInput {
  isolation?: Isolation;
  readOnly?: boolean;
  /** The row policies of the caller who begins it: every read and write inside honours them. */
  policies?: RowPolicies;
}

export interface Transaction {
  readonly id: string;
  readonly isolation: Isolation;
  readonly readOnly: boolean;
  readonly snapshotSeq: number;
  /** 'active' until commit/rollback; 'aborted' after a retryable failure. */
  readonly state: 'active' | 'committed' | 'rolled_back' | 'aborted';
  /** True while commit() runs: the outcome is not known yet, so rollback and expiry wait for it. */
  readonly committing: boolean;
  /** Rows written so far (pending until commit). */
  readonly writeCount: number;
  /** A row as this transaction sees it (its own writes first); with `asOf`, the committed past. */
  get(input: GetInput): RowRead;
  /** The committed versions of a key this transaction's reads see (its own pending writes are not events yet). */
  history(input: { table: string; key: string }): HistoryResult;
  /** A query or a page of rows as this transaction sees it; with `asOf`, the committed past. */
  query(spec: QuerySpec): Page;
  put(input: PutInput): Promise<WriteResult>;
  patch(input: PatchInput): Promise<WriteResult>;
  delete(input: DeleteInput): Promise<WriteResult>;
  /** Commits every write at once; an idempotency entry given here is recorded in the same commit. */
  commit(options?: { idempotency?: IdempotencyRequest }): Promise<{ seq: number | null }>;
  rollback(): void;
  /** Ends an abandoned transaction (idle expiry, shutdown): rolls it back and cancels a lock wait with `reason`; no-op while committing. */
  expire(reason: Error): void;
  savepoint(name: string): void;
  rollbackToSavepoint(name: string): void;
  releaseSavepoint(name: string): void;
}

export type { ChangesInput, ChangesPage, FeedChange, FeedCommit } from './feed.js';
export type { DiffChange, DiffInput, DiffPage } from './time-travel.js';
export type { CommitOutcome, IdempotencyEntry, IdempotencyRequest } from './mvcc/idempotency.js';

export interface EngineStats {
  seq: number;
  tables: number;
  rows: number;
  /** Versions held by the version store, deletes included (their documents in the log, but the newest). */
  versions: number;
  logBytes: number;
  openTransactions: number;
  commits: number;
  conflicts: number;
  deadlocks: number;
  checkpointSeq: number | null;
  /** Old versions' documents read from the log (cache misses) since start. */
  versionReads: number;
}

/** Whether the database accepts writes now, and if not, why (for /readyz). */
export interface Health {
  writable: boolean;
  /** Why writes are refused (the log failed, memory is at its limit, shutting down); absent when writable. */
  reason?: string;
}

export interface Database {
  /**
   * Newest seq durable in this node's log. On a single node that is also the newest visible one; in cluster mode a
   * commit is visible (durable in the shared log) a moment before this node's log holds it.
   */
  readonly durableSeq: number;
  /** With `{ system: true }` the name must start with "_" (reserved for DriftDB's own tables); without, it must not. */
  createTable(input: CreateTableInput, options?: CreateTableOptions): Promise<TableInfo>;
  listTables(): TableInfo[];
  getTable(name: string): TableInfo;
  dropTable(name: string): Promise<void>;
  createIndex(table: string, field: string): Promise<TableInfo>;
  dropIndex(table: string, field: string): Promise<void>;

  put(input: PutInput): Promise<WriteResult>;
  patch(input: PatchInput): Promise<WriteResult>;
  delete(input: DeleteInput): Promise<WriteResult>;
  get(input: GetInput): RowRead;
  /** Every committed version of a key, oldest first; inside a transaction, those its snapshot sees (its own pending writes are not events yet). */
  history(input: { table: string; key: string } & TxRef): HistoryResult;
  scan(input: ScanInput): Page;
  query(spec: QuerySpec, options?: TxRef): Page;
  explain(spec: QuerySpec, options?: TxRef): { plan: Plan };

  begin(input?: BeginInput): Transaction;
  /** A page of the rows that differ between a table's states at two seqs, in key order (http-api.md §9). */
  diff(input: DiffInput): DiffPage;
  /** A new table holding the source's rows as of `asOf`, in one commit. */
  fork(input: ForkInput): Promise<TableInfo>;
  /** One commit of the puts and deletes that make the table's rows what they were at `asOf` (seq null if none). */
  restore(input: RestoreInput): Promise<{ seq: number | null; rowsChanged: number }>;
  /** The answer stored for `user`'s Idempotency-Key `key`, unless there is none or it expired. */
  idempotencyEntry(user: string, key: string): IdempotencyEntry | null;
  /**
   * Resolves once `seq` is visible on this node (http-api.md §10, minSeq), or rejects with 503 unavailable after
   * `timeoutMs`. A single node has every seq it answered, so this waits only for a seq not committed yet.
   */
  waitForSeq(seq: number, timeoutMs: number): Promise<void>;
  /**
   * The durable records after `afterSeq` (at most `recordsMax`) read back from this node's log as one batch of the
   * replicated log (cluster mode: a peer catching up applies it), or null when there is none.
   */
  logBatch(afterSeq: number, recordsMax: number): Buffer | null;
  /** A page of the change feed (http-api.md §9): durable commits after `since`, as one caller sees them. */
  changes(input: ChangesInput): ChangesPage;
  /** Calls `listener` once per turn in which commits became durable, with the newest durable seq; answers the unsubscribe. */
  subscribeChanges(listener: (seq: number) => void): () => void;
  checkpoint(): Promise<{ seq: number }>;
  stats(): EngineStats;
  health(): Health;
  close(): Promise<void>;
}

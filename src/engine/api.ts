// The engine's public surface as the rest of DriftDB sees it: the Database façade and its value types.

import type { Plan, QueryPage, QuerySpec } from './query/spec.js';
import type { Doc, HistoryEntry, TableDef } from './types.js';

export type Isolation = 'read_uncommitted' | 'read_committed' | 'repeatable_read' | 'snapshot' | 'serializable';
export const isolationLevels: readonly Isolation[] = [
  'read_uncommitted',
  'read_committed',
  'repeatable_read',
  'snapshot',
  'serializable',
];

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

/** `asOf` as a client sent it: a seq (number or decimal string) or an RFC 3339 instant. */
export type AsOf = number | string;

/** A conditional write: `ifMatch` a version seq (or '*' = the row exists), `ifNoneMatch` = the row must not exist. */
export interface WriteConditions {
  ifMatch?: number | '*';
  ifNoneMatch?: boolean;
}

export interface TxRef {
  /** The open transaction to run in; absent = autocommit. */
  tx?: Transaction;
}

export interface PutInput extends WriteConditions, TxRef {
  table: string;
  key: string;
  doc: unknown;
}

export interface PatchInput extends WriteConditions, TxRef {
  table: string;
  key: string;
  patch: unknown;
}

export interface DeleteInput extends WriteConditions, TxRef {
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
  versions: HistoryEntry[];
}

export interface BeginInput {
  isolation?: Isolation;
  readOnly?: boolean;
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
  commit(): Promise<{ seq: number | null }>;
  rollback(): void;
  /** Ends an abandoned transaction (idle expiry, shutdown): rolls it back and cancels a lock wait with `reason`; no-op while committing. */
  expire(reason: Error): void;
  savepoint(name: string): void;
  rollbackToSavepoint(name: string): void;
  releaseSavepoint(name: string): void;
}

export interface EngineStats {
  seq: number;
  tables: number;
  rows: number;
  /** Versions held across all tables (every row event of every key, deletes included). */
  versions: number;
  logBytes: number;
  openTransactions: number;
  commits: number;
  conflicts: number;
  deadlocks: number;
  checkpointSeq: number | null;
}

export interface Database {
  /** Newest durable (and visible) seq. */
  readonly durableSeq: number;
  createTable(input: CreateTableInput): Promise<TableInfo>;
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
  explain(spec: QuerySpec): { plan: Plan };

  begin(input?: BeginInput): Transaction;
  checkpoint(): Promise<{ seq: number }>;
  stats(): EngineStats;
  close(): Promise<void>;
}

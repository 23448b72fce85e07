// Plain data types shared by every part of the engine: documents, table definitions, log records, versions.

import type { Doc } from './json/index.js';

export type { Doc, Json } from './json/index.js';

export interface TableDef {
  name: string;
  /** Field of the document that holds its key (top-level field name). */
  primaryKey: string;
  /** Dot-separated field paths with a secondary index. */
  indexes: string[];
  /** JSON Schema (draft 2020-12) every written document must satisfy. */
  schema?: Doc;
  /** Seq of the commit that created the table. */
  createdSeq: number;
  /** A fork: the table it was made from, and as of which seq. */
  forkedFrom?: { table: string; seq: number };
}

export type RowOp = 'put' | 'patch' | 'delete';

/** One change inside a commit record. */
export type Change =
  /** A row event; `doc` is the full document after the event as JSON text, null for a delete. */
  | { kind: 'row'; table: string; key: string; op: RowOp; doc: string | null }
  | { kind: 'createTable'; name: string; primaryKey: string; indexes: string[]; schema?: Doc; forkedFrom?: { table: string; seq: number } }
  | { kind: 'dropTable'; name: string }
  | { kind: 'createIndex'; table: string; field: string }
  | { kind: 'dropIndex'; table: string; field: string }
  /** The first answer to a write sent with an Idempotency-Key, recorded with the commit that wrote it. */
  | { kind: 'idempotency'; user: string; key: string; fingerprint: string; answer: string; expiresAt: number };

/** One log record = one commit: all its changes become durable and visible together under `seq`. */
export interface CommitRecord {
  seq: number;
  /** Commit time, milliseconds since the epoch; never decreases as seq grows. */
  ts: number;
  changes: Change[];
}

/** One event in a key's history. */
export interface Version {
  seq: number;
  op: RowOp;
  /** The full document after the event as JSON text; null for a delete. */
  json: string | null;
}

/** A history entry as the API shows it. */
export interface HistoryEntry {
  key: string;
  seq: number;
  ts: number;
  op: RowOp;
  doc: Doc | null;
}

// The contract between the query executor and the storage it reads: a table as of one snapshot.
// The storage side (engine/database.ts) implements RowSource; the query side only consumes it.

import type { Doc, HistoryEntry, Json, TableDef } from '../types.js';

/** A bound of an index range; `value` is a number or a string, and the range stays inside that JSON type. */
export interface IndexBound {
  value: number | string;
  inclusive: boolean;
}

export type IndexLookup =
  /** Keys whose field equals a scalar (null, boolean, number, string). */
  | { kind: 'eq'; value: Json }
  /** Keys whose field is of the bounds' type and lies between them; at least one bound is given. */
  | { kind: 'range'; lower?: IndexBound; upper?: IndexBound };

/** A document read from storage, beside the stored JSON text it was parsed from. */
export interface StoredRow {
  key: string;
  doc: Doc;
  /** The stored text: a page without `select` answers it as it is. */
  json: string;
}

/** The StoredRow of a stored text (null for a deletion). */
export function storedRow(key: string, json: string | null): StoredRow | null {
  return json === null ? null : { key, doc: JSON.parse(json) as Doc, json };
}

export interface RowSource {
  readonly table: TableDef;
  /** The snapshot every read of this source sees. */
  readonly seq: number;
  /**
   * Keys in code-point order, strictly after `afterKey` when given. May yield keys that have no live
   * row at this snapshot (read() then answers null): callers must not count them.
   */
  keys(afterKey?: string): Iterable<string>;
  /**
   * Candidate keys for a lookup on an indexed field: a superset of the keys whose document at this
   * snapshot satisfies the lookup, in no particular order and possibly repeated. Callers re-check
   * every candidate against the document they read().
   */
  indexKeys(field: string, lookup: IndexLookup): Iterable<string>;
  /** Upper bound on how many candidates indexKeys(field, lookup) would yield (for plans). */
  indexEstimate(field: string, lookup: IndexLookup): number;
  /** The document under `key` at this snapshot, or null when absent or deleted. */
  read(key: string): Doc | null;
  /** The same, with the stored JSON text it was parsed from (a page without `select` answers that text as is). */
  readRow(key: string): StoredRow | null;
  /** Live rows at the newest state (an estimate for plans). */
  rowCountEstimate(): number;
  /**
   * Every version of every key up to `seq`, keys in order (strictly after `afterKey` when given) and each key's
   * versions oldest first.
   */
  versions(afterKey?: string): Iterable<HistoryEntry>;
}

// Committed reads, shared by autocommit requests and transactions: a row at a snapshot, a key's history up to a
// snapshot, and the snapshot a client's asOf or a query cursor names.

import { DriftError } from '../../errors.js';
import { limits, MiB } from '../../limits.js';
import type { HistoryResult, RowPolicy, RowRead, StoredVersion } from '../api.js';
import { extractPath } from '../json/index.js';
import { cursorSeq, StoredRow, type QuerySpec } from '../query/index.js';
import type { Store } from '../store.js';
import type { Doc, RowOp, TableDef, Version } from '../types.js';
import { resolveAsOf } from './as-of.js';
import type { TableState } from './table-state.js';

/** The snapshot a client's asOf names, or null when it names none (read at the reader's own snapshot). */
export function asOfSeq(store: Store, asOf: number | string | undefined): number | null {
  return asOf === undefined ? null : resolveAsOf(asOf, store.visibleSeq, (s) => store.tsOf(s));
}

/** The snapshot a query cursor pins, checked against this database. */
export function cursorSnapshot(store: Store, spec: QuerySpec): number | null {
  if (typeof spec.cursor !== 'string') return null;
  const seq = cursorSeq(spec.cursor);
  if (seq > store.visibleSeq) throw new DriftError('validation_failed', 'The cursor does not belong to this database.');
  return seq;
}

export function rowNotFound(key: string): never {
  throw new DriftError('row_not_found', `Row '${key}' does not exist.`);
}

/** The row `key` as of snapshot `seq`; row_not_found when absent or deleted there, or hidden by the row policy. */
export function readRowAt(table: TableState, key: string, seq: number, policy: RowPolicy | null): RowRead {
  const version = table.versionAt(key, seq);
  if (version === undefined || version.json === null) return rowNotFound(key);
  const row = new LazyRowRead(key, version.seq, version.json);
  return policy === null || policy.read(row.reader()) ? row : rowNotFound(key);
}

/**
 * Every committed version of `key` up to snapshot `seq`, oldest first; with a row policy, those it admits (a delete
 * when the version before it is admitted), and row_not_found when it admits none, as for a key never written.
 */
export function historyAt(store: Store, table: TableState, key: string, seq: number, policy: RowPolicy | null): HistoryResult {
  const visible: Version[] = [];
  const history = table.history(key);
  const count = history === undefined ? 0 : history.indexAt(seq) + 1;
  let bytes = 0;
  let seen = false;
  for (let from = 0; from < count; ) {
    // Old documents are read from the log in runs: stop reading as soon as the answer is known to be too large.
    const versions = table.versionsOf(history!, from, count, limits.historyBytesMax - bytes);
    from += versions.length;
    for (const version of versions) {
      seen = policy === null || (version.json === null ? seen : policy.read(new StoredRow(key, version.json)));
      if (!seen) continue;
      visible.push(version);
      bytes += historyVersionFrameBytes + (version.json?.length ?? 0);
      if (bytes > limits.historyBytesMax) tooLargeHistory(table.def, key, visible.findLast((v) => v.json !== null)?.json ?? null);
    }
  }
  if (visible.length === 0) throw new DriftError('row_not_found', `Row '${key}' was never written.`);
  return { key, versions: visible.map((v) => new StoredHistoryEntry(key, v.seq, store.tsOf(v.seq), v.op, v.json)) };
}

/** A version of a key's history: its document as the stored JSON text, parsed only if someone reads `doc`. */
class StoredHistoryEntry implements StoredVersion {
  private parsed: Doc | null | undefined;

  constructor(
    readonly key: string,
    readonly seq: number,
    readonly ts: number,
    readonly op: RowOp,
    readonly json: string | null,
  ) {}

  get doc(): Doc | null {
    if (this.parsed === undefined) this.parsed = this.json === null ? null : (JSON.parse(this.json) as Doc);
    return this.parsed;
  }
}

/** A read row whose document is parsed only if someone asks for it (a GET sends the stored text as it is). */
export class LazyRowRead implements RowRead {
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

  /** The row as a policy or a filter reads it: its fields out of the text. */
  reader(): StoredRow {
    return new StoredRow(this.key, this.json, this.parsed);
  }
}

/** The text around one version's document in a history answer: its seq, ts, op, member names and punctuation. */
const historyVersionFrameBytes = 80;

/**
 * Refuses a key's history whose answer would pass historyBytesMax. The route has no pages, so the detail names the
 * history query that pages through the same versions.
 */
function tooLargeHistory(table: TableDef, key: string, newest: string | null): never {
  // The key's value as documents hold it (7, not "7"), read from its newest document, so the query matches.
  const value = (newest === null ? undefined : extractPath(newest, [table.primaryKey])) ?? key;
  const query = JSON.stringify({ table: table.name, history: true, where: { [table.primaryKey]: value } });
  throw new DriftError(
    'bad_request',
    `The history of '${key}' is larger than historyBytesMax (${limits.historyBytesMax / MiB} MiB), too large for ` +
      `one answer; page through it with POST /v1/query and ${query}.`,
  );
}

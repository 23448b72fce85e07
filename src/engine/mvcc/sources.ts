// RowSource implementations: a table as of one committed snapshot, and the same table seen through a set of
// uncommitted writes (a transaction's own writes, plus other transactions' for read_uncommitted).

import { compareCodePoints } from '../json/index.js';
import { storedRow, type IndexLookup, type RowSource, type StoredRow } from '../query/source.js';
import type { RowPolicy } from '../api.js';
import type { Doc, HistoryEntry, TableDef } from '../types.js';
import type { TableState } from './table-state.js';

export type TsOf = (seq: number) => number;

/** A table as of one committed snapshot, as one caller sees it: a row policy hides the versions it does not admit. */
export class SnapshotSource implements RowSource {
  readonly table: TableDef;
  readonly seq: number;
  private readonly state: TableState;
  private readonly tsOf: TsOf;
  private readonly policy: RowPolicy | null;

  constructor(state: TableState, seq: number, tsOf: TsOf, policy: RowPolicy | null = null) {
    this.state = state;
    this.table = state.def;
    this.seq = seq;
    this.tsOf = tsOf;
    this.policy = policy;
  }

  keys(afterKey?: string): Iterable<string> {
    return this.state.rows.keys(afterKey === undefined ? undefined : { after: afterKey });
  }

  indexKeys(field: string, lookup: IndexLookup): Iterable<string> {
    const index = this.state.indexes.get(field);
    return index === undefined ? [] : index.lookup(lookup);
  }

  indexEstimate(field: string, lookup: IndexLookup): number {
    const index = this.state.indexes.get(field);
    return index === undefined ? this.rowCountEstimate() : index.estimate(lookup);
  }

  read(key: string): Doc | null {
    return this.readRow(key)?.doc ?? null;
  }

  readRow(key: string): StoredRow | null {
    const row = storedRow(key, this.state.versionAt(key, this.seq)?.json ?? null);
    return row === null || this.policy === null || this.policy.read(row) ? row : null;
  }

  rowCountEstimate(): number {
    return this.state.liveRows;
  }

  *versions(afterKey?: string): Iterable<HistoryEntry> {
    const after = afterKey === undefined ? undefined : { after: afterKey };
    for (const [key, history] of this.state.rows.entries(after)) {
      let seen = false;
      for (let i = 0; i < history.count && history.seq(i) <= this.seq; i++) {
        const version = this.state.versionOf(key, history, i);
        const doc = version.json === null ? null : (JSON.parse(version.json) as Doc);
        // A delete is shown to whoever saw the version before it (http-api.md §8).
        seen = this.policy === null || (doc === null ? seen : this.policy.read(doc));
        if (seen) yield { key, seq: version.seq, ts: this.tsOf(version.seq), op: version.op, doc };
      }
    }
  }
}

/** Uncommitted writes by key: the document's JSON text, or null for a pending delete. */
export type Overlay = ReadonlyMap<string, string | null>;

/** A snapshot seen through uncommitted writes; their keys join every candidate list so nothing is missed. */
export class OverlaySource implements RowSource {
  readonly table: TableDef;
  readonly seq: number;
  private readonly base: SnapshotSource;
  private readonly overlay: Overlay;
  private readonly policy: RowPolicy | null;
  private sortedOverlayKeys: string[] | null = null;

  constructor(base: SnapshotSource, overlay: Overlay, policy: RowPolicy | null = null) {
    this.base = base;
    this.table = base.table;
    this.seq = base.seq;
    this.overlay = overlay;
    this.policy = policy;
  }

  *keys(afterKey?: string): Iterable<string> {
    const extra = this.overlayKeys().filter((k) => afterKey === undefined || compareCodePoints(k, afterKey) > 0);
    let i = 0;
    for (const key of this.base.keys(afterKey)) {
      while (i < extra.length && compareCodePoints(extra[i]!, key) < 0) yield extra[i++]!;
      if (i < extra.length && extra[i] === key) i++;
      yield key;
    }
    while (i < extra.length) yield extra[i++]!;
  }

  *indexKeys(field: string, lookup: IndexLookup): Iterable<string> {
    yield* this.base.indexKeys(field, lookup);
    yield* this.overlay.keys();
  }

  indexEstimate(field: string, lookup: IndexLookup): number {
    return this.base.indexEstimate(field, lookup) + this.overlay.size;
  }

  read(key: string): Doc | null {
    return this.readRow(key)?.doc ?? null;
  }

  readRow(key: string): StoredRow | null {
    if (!this.overlay.has(key)) return this.base.readRow(key);
    const row = storedRow(key, this.overlay.get(key)!);
    return row === null || this.policy === null || this.policy.read(row) ? row : null;
  }

  rowCountEstimate(): number {
    return this.base.rowCountEstimate() + this.overlay.size;
  }

  // History shows committed events only: uncommitted writes have no seq yet.
  versions(afterKey?: string): Iterable<HistoryEntry> {
    return this.base.versions(afterKey);
  }

  private overlayKeys(): string[] {
    this.sortedOverlayKeys ??= [...this.overlay.keys()].sort(compareCodePoints);
    return this.sortedOverlayKeys;
  }
}

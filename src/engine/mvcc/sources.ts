// RowSource implementations: a table as of one committed snapshot, and the same table seen through a set of
// uncommitted writes (a transaction's own writes, plus other transactions' for read_uncommitted).

import { compareCodePoints } from '../json/index.js';
import { StoredRow, type IndexCandidates, type IndexLookup, type RowRef, type RowSource } from '../query/source.js';
import type { RowPolicy } from '../api.js';
import type { Doc, HistoryEntry, TableDef } from '../types.js';
import { RowHistory, type TableState } from './table-state.js';

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

  rows(afterKey?: string): Iterable<RowRef> {
    return this.state.rows.values(afterKey === undefined ? undefined : { after: afterKey });
  }

  indexRows(field: string, lookup: IndexLookup): IndexCandidates {
    const index = this.state.indexes.get(field);
    return index === undefined ? { rows: [], inKeyOrder: true } : index.candidates(lookup);
  }

  indexEstimate(field: string, lookup: IndexLookup): number {
    const index = this.state.indexes.get(field);
    return index === undefined ? this.rowCountEstimate() : index.estimate(lookup);
  }

  read(key: string): Doc | null {
    return this.readRow(key)?.doc ?? null;
  }

  readRow(key: string): StoredRow | null {
    const history = this.state.history(key);
    return history === undefined ? null : this.readHistory(history);
  }

  // A candidate the index or the row map yielded is its history: read without looking its key up.
  readRef(ref: RowRef): StoredRow | null {
    return ref instanceof RowHistory ? this.readHistory(ref) : this.readRow(ref.key);
  }

  private readHistory(history: RowHistory): StoredRow | null {
    const i = history.indexAt(this.seq);
    const json = i < 0 ? null : this.state.textOf(history, i);
    if (json === null) return null;
    // A row of one version is listed by each index under that version's values only.
    const row = new StoredRow(history.key, json, undefined, history.count === 1 && this.state.indexesExact);
    return this.policy === null || this.policy.read(row) ? row : null;
  }

  rowCountEstimate(): number {
    return this.state.liveRows;
  }

  *versions(afterKey?: string): Iterable<HistoryEntry> {
    const after = afterKey === undefined ? undefined : { after: afterKey };
    for (const [key, history] of this.state.rows.entries(after)) {
      let seen = false;
      for (let i = 0; i < history.count && history.seq(i) <= this.seq; i++) {
        const version = this.state.versionOf(history, i);
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

  *rows(afterKey?: string): Iterable<RowRef> {
    const extra = this.overlayKeys().filter((k) => afterKey === undefined || compareCodePoints(k, afterKey) > 0);
    let i = 0;
    for (const row of this.base.rows(afterKey)) {
      while (i < extra.length && compareCodePoints(extra[i]!, row.key) < 0) yield { key: extra[i++]! };
      if (i < extra.length && extra[i] === row.key) i++;
      yield row;
    }
    while (i < extra.length) yield { key: extra[i++]! };
  }

  indexRows(field: string, lookup: IndexLookup): IndexCandidates {
    const base = this.base.indexRows(field, lookup).rows;
    const overlay = this.overlay;
    return {
      rows: (function* () {
        yield* base;
        for (const key of overlay.keys()) yield { key };
      })(),
      inKeyOrder: false,
    };
  }

  indexEstimate(field: string, lookup: IndexLookup): number {
    return this.base.indexEstimate(field, lookup) + this.overlay.size;
  }

  read(key: string): Doc | null {
    return this.readRow(key)?.doc ?? null;
  }

  readRow(key: string): StoredRow | null {
    return this.overlay.has(key) ? this.readOverlay(key) : this.base.readRow(key);
  }

  readRef(ref: RowRef): StoredRow | null {
    return this.overlay.has(ref.key) ? this.readOverlay(ref.key) : this.base.readRef(ref);
  }

  private readOverlay(key: string): StoredRow | null {
    const json = this.overlay.get(key)!;
    if (json === null) return null;
    const row = new StoredRow(key, json);
    return this.policy === null || this.policy.read(row) ? row : null;
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

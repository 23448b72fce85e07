// One table in memory: its definition, every key's history (the newest version's text, and where every older
// version's document lies in the log, packed as numbers), its secondary indexes and its schema validator. Versions
// above the durable watermark may sit at a history's end; every reader names a snapshot seq and so never sees them.

import type { ValidateFunction } from 'ajv';
import { assert } from '../../assert.js';
import { compareCodePoints, extractPath, getSegments, sortByCodePoints } from '../json/index.js';
import { SecondaryIndex } from '../indexes/secondary-index.js';
import type { DocumentReader, DocumentRef } from '../log/document-reader.js';
import { SortedMap } from '../storage/sorted-map.js';
import type { Doc, RowOp, TableDef, Version } from '../types.js';

const opCodes: Record<RowOp, number> = { put: 0, patch: 1, delete: 2 };
const opsByCode: readonly RowOp[] = ['put', 'patch', 'delete'];
/** Set in a version's packed seq when its document lies in a record of an older format (read by whole frame). */
const framedFlag = 4;
/** A packed version: seq × versionSeqScale + op code (+ framedFlag). Seqs stay below 2^50, far past any log. */
const versionSeqScale = 8;
/** The location of a version with no document yet known: a delete, or a commit whose record is not placed yet. */
export const noLocation = -1;

function unplacedId(key: string, seq: number): string {
  return `${seq}\u0000${key}`;
}

export function packVersion(seq: number, op: RowOp, framed = false): number {
  return seq * versionSeqScale + opCodes[op] + (framed ? framedFlag : 0);
}

export function versionSeq(packed: number): number {
  return Math.floor(packed / versionSeqScale);
}

export function versionOp(packed: number): RowOp {
  return opsByCode[packed % versionSeqScale & 3]!;
}

function isFramed(packed: number): boolean {
  return (packed % versionSeqScale & framedFlag) !== 0;
}

/**
 * One key's versions. Memory per version is two numbers in a packed double array: its packed seq and op, and the
 * log location of its document. Only the newest version's text is held; older ones are read from the log.
 */
export class RowHistory {
  /** The row's key: secondary indexes list histories, and a query reads a candidate through it without a lookup. */
  readonly key: string;
  /** Text of the newest applied version; null when that is a delete. */
  json: string | null;
  /**
   * Oldest first, two numbers per version: packVersion(seq, op), then the location of its document (or -1). A
   * history loaded from a checkpoint is a view of the chunk it came in (no copy into the heap, which made restarts
   * of long histories slow); it becomes an array of its own when it next grows.
   */
  meta: number[] | Float64Array;
  /**
   * Versions, and the newest one's seq: kept beside `meta` so that reading the newest version (a query's every
   * candidate, most of the time) touches this object and the text only, not the packed array (a cache miss each).
   */
  count: number;
  newestSeq: number;

  constructor(key: string, json: string | null, meta: number[] | Float64Array) {
    this.key = key;
    this.json = json;
    this.meta = meta;
    this.count = meta.length / 2;
    this.newestSeq = versionSeq(meta[meta.length - 2]!);
  }

  /** Appends versions' packed numbers (pairs) at the end. */
  append(...numbers: number[]): void {
    this.grow(numbers);
  }

  /** Appends the pairs of `numbers` (a history's next piece, from a checkpoint). */
  grow(numbers: ArrayLike<number>): void {
    let meta = this.meta;
    if (!Array.isArray(meta)) {
      // Sized exactly, then filled: Array.from and spreading reserve more room, and spreading boxes the numbers.
      const copy = new Array<number>(meta.length);
      for (let i = 0; i < meta.length; i++) copy[i] = meta[i]!;
      this.meta = meta = copy;
    }
    for (let i = 0; i < numbers.length; i++) (meta as number[]).push(numbers[i]!);
    this.count = meta.length / 2;
    this.newestSeq = versionSeq(meta[meta.length - 2]!);
  }

  /** Packed seq/op of version `i` (0 = oldest). */
  packed(i: number): number {
    return this.meta[2 * i]!;
  }

  seq(i: number): number {
    return versionSeq(this.meta[2 * i]!);
  }

  /** Index of the newest version with seq ≤ `seq`, or -1: versions are read near the end, long ones bisected. */
  indexAt(seq: number): number {
    let i = this.count - 1;
    if (this.newestSeq <= seq) return i;
    if (i > 16) return this.bisect(seq);
    while (i > 0 && this.seq(i) > seq) i--;
    return this.seq(i) <= seq ? i : -1;
  }

  private bisect(seq: number): number {
    let lo = 0;
    let hi = this.count - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.seq(mid) <= seq) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }
}

export class TableState {
  readonly def: TableDef;
  readonly indexes = new Map<string, SecondaryIndex<RowHistory>>();
  readonly validate: ValidateFunction | null;
  /**
   * True while every index lists each row under values its versions held only (a checkpoint of format 4 may have
   * listed rows under values of versions lost since): then a row of one version is listed under its values alone.
   */
  indexesExact = true;
  /** Live rows at the newest applied state. */
  liveRows = 0;
  /** Versions of every key, deletes included. */
  versionCount = 0;
  private readonly documents: DocumentReader;
  /**
   * Texts of versions superseded before their commit was placed in the log (keyed rowId-like by key and seq). Row
   * locks make that rare (a writer waits until the commit before it is durable), but a writer that takes no row
   * locks must not leave a version unreadable; each entry goes when its version is placed.
   */
  private readonly unplaced = new Map<string, string>();
  private rowMap = new SortedMap<string, RowHistory>(compareCodePoints);
  /**
   * While recovery stages the table, histories of keys the row map does not hold gather here, hashed: recovery
   * needs no order, and one sort at the end costs far less than an ordered insert per key.
   */
  private staged: Map<string, RowHistory> | null = null;
  /**
   * Point lookups by hash: key → the same history the row map holds, filled as keys are first read or written, so
   * a GET skips a tree descent (docs/engine.md); filling it lazily keeps restarts from paying for a million inserts.
   * It never holds more keys than the row map.
   */
  private byKey = new Map<string, RowHistory>();

  constructor(def: TableDef, validate: ValidateFunction | null, documents: DocumentReader) {
    this.def = def;
    this.validate = validate;
    this.documents = documents;
    for (const field of def.indexes) this.indexes.set(field, new SecondaryIndex<RowHistory>(field));
  }

  /** Every key's history in key order. */
  get rows(): SortedMap<string, RowHistory> {
    assert(this.staged === null, 'a staged table is not readable');
    return this.rowMap;
  }

  /** The history of `key`, or undefined when it was never written. */
  history(key: string): RowHistory | undefined {
    assert(this.staged === null, 'a staged table is not readable');
    let history = this.byKey.get(key);
    if (history === undefined) {
      history = this.rowMap.get(key);
      if (history !== undefined) this.byKey.set(key, history);
    }
    return history;
  }

  /** The newest applied version of `key` (possibly above the durable watermark). */
  latest(key: string): Version | undefined {
    const history = this.history(key);
    return history === undefined ? undefined : this.versionOf(history, history.count - 1);
  }

  /** The version of `key` visible at snapshot `seq`. */
  versionAt(key: string, seq: number): Version | undefined {
    const history = this.history(key);
    if (history === undefined) return undefined;
    const i = history.indexAt(seq);
    return i < 0 ? undefined : this.versionOf(history, i);
  }

  /**
   * Versions `from`, `from` + 1, … (before `to`) of a history with their documents, the old ones read from the log
   * together (DocumentReader.readMany): all of them, or once their documents pass `charsMax` characters, those up to
   * the one that passed it (at least one version).
   */
  versionsOf(history: RowHistory, from: number, to: number, charsMax = Infinity): Version[] {
    const versions: Version[] = [];
    const refs: DocumentRef[] = [];
    /** versions[slots[k]] is the version whose document refs[k] names. */
    const slots: number[] = [];
    for (let i = from; i < to; i++) {
      const packed = history.packed(i);
      const seq = versionSeq(packed);
      const location = history.meta[2 * i + 1]!;
      const old = i < history.count - 1 && versionOp(packed) !== 'delete' && location !== noLocation;
      versions.push({ seq, op: versionOp(packed), json: old ? null : this.textOf(history, i) });
      if (old) {
        refs.push({ location, seq, framed: isFramed(packed), table: this.def.name, key: history.key });
        slots.push(versions.length - 1);
      }
    }
    if (refs.length === 0) return versions;
    const texts = this.documents.readMany(refs, charsMax);
    for (let k = 0; k < texts.length; k++) versions[slots[k]!]!.json = texts[k]!;
    // Reading stopped early: the versions after the last one read wait for the caller's next call.
    return texts.length < refs.length ? versions.slice(0, slots[texts.length]!) : versions;
  }

  /** Version `i` of a history with its document: the newest from memory, any other from the log. */
  versionOf(history: RowHistory, i: number): Version {
    const packed = history.packed(i);
    return { seq: versionSeq(packed), op: versionOp(packed), json: this.textOf(history, i) };
  }

  /** The document of version `i` of a history (null for a delete): the newest from memory, any other from the log. */
  textOf(history: RowHistory, i: number): string | null {
    if (i === history.count - 1) return history.json;
    const packed = history.packed(i);
    if (versionOp(packed) === 'delete') return null;
    const seq = versionSeq(packed);
    const location = history.meta[2 * i + 1]!;
    if (location === noLocation) return this.unplaced.get(unplacedId(history.key, seq))!;
    return this.documents.read({ location, seq, framed: isFramed(packed), table: this.def.name, key: history.key });
  }

  /**
   * Appends one row event. `doc` is the parsed document when the caller already has it (saves a parse); `location`
   * is where its document lies in the log, when known already (replay), else placeNewest() gives it once durable.
   */
  applyRow(seq: number, key: string, op: RowOp, json: string | null, options: { doc?: Doc; location?: number; framed?: boolean } = {}): void {
    const packed = packVersion(seq, op, options.framed === true);
    const location = options.location ?? noLocation;
    let history = this.staged === null ? this.findHistory(key) : (this.staged.get(key) ?? this.rowMap.get(key));
    const isNew = history === undefined;
    const wasLive = history !== undefined && history.json !== null;
    if (history === undefined) {
      history = new RowHistory(key, json, [packed, location]);
      if (this.staged === null) {
        this.rowMap.set(key, history);
        this.byKey.set(key, history);
      } else {
        this.staged.set(key, history);
      }
    } else {
      assert(history.newestSeq < seq, 'row events must be applied in seq order');
      // The newest text is about to be superseded: readers of older snapshots may ask for it soon.
      const newest = history.meta.length - 2;
      if (history.json !== null && history.meta[newest + 1] === noLocation) {
        this.unplaced.set(unplacedId(key, versionSeq(history.meta[newest]!)), history.json);
      } else if (history.json !== null && this.staged === null && !isFramed(history.meta[newest]!)) {
        this.documents.remember(history.meta[newest + 1]!, history.json);
      }
      history.append(packed, location);
      history.json = json;
    }
    this.versionCount++;
    this.liveRows += (json !== null ? 1 : 0) - (wasLive ? 1 : 0);
    if (json !== null && this.indexes.size > 0) {
      // Replay has only the text: the indexed fields are read out of it rather than parsing every document.
      for (const index of this.indexes.values()) {
        index.add(options.doc === undefined ? extractPath(json, index.path) : getSegments(options.doc, index.path), history, isNew);
      }
    }
  }

  /** Records where the version of `key` committed at `seq` lies in the log, now that it is durable. */
  placeVersion(key: string, seq: number, location: number): void {
    const history = this.findHistory(key);
    const i = history === undefined ? -1 : history.indexAt(seq);
    assert(history !== undefined && i >= 0 && history.seq(i) === seq, 'a placed version exists');
    history.meta[2 * i + 1] = location;
    if (i < history.count - 1) this.unplaced.delete(unplacedId(key, seq));
  }

  // Keys often arrive in order (ids): a key past the last one is new without a search.
  private findHistory(key: string): RowHistory | undefined {
    const known = this.byKey.get(key);
    if (known !== undefined) return known;
    const lastKey = this.rowMap.lastKey();
    return lastKey !== undefined && compareCodePoints(key, lastKey) > 0 ? undefined : this.history(key);
  }

  /** Builds a new index from every version of every row (older documents read from the log), so it serves every snapshot. */
  addIndex(field: string): void {
    const index = new SecondaryIndex<RowHistory>(field);
    if (this.staged !== null) index.beginStaging();
    for (const history of this.allHistories()) {
      for (let i = 0; i < history.count; i++) {
        const json = this.textOf(history, i);
        if (json !== null) index.add(extractPath(json, index.path), history, i === 0);
      }
    }
    this.indexes.set(field, index);
    this.def.indexes.push(field);
  }

  dropIndex(field: string): void {
    this.indexes.delete(field);
    this.def.indexes = this.def.indexes.filter((f) => f !== field);
  }

  /**
   * Recovery's bulk mode: until finishStaging, row and index writes go to hash maps and nothing may read the
   * table. A recovery applies a million events; ordered inserts would cost it a tree descent each.
   */
  beginStaging(): void {
    this.staged ??= new Map();
    for (const index of this.indexes.values()) index.beginStaging();
  }

  /** Orders what was staged into the row map and the indexes; the table is readable again. */
  finishStaging(): void {
    const staged = this.staged;
    if (staged === null) return;
    this.staged = null;
    for (const index of this.indexes.values()) index.finishStaging();
    if (this.rowMap.size > 4 * staged.size) {
      for (const [key, history] of staged) this.rowMap.set(key, history);
      return;
    }
    for (const [key, history] of this.rowMap.entries()) staged.set(key, history);
    const keys = sortByCodePoints([...staged.keys()]);
    this.rowMap = SortedMap.fromSorted(
      compareCodePoints,
      keys,
      keys.map((key) => staged.get(key)!),
    );
  }

  /** Loads a checkpoint's rows, ascending by key, into a table that holds none yet. */
  loadSortedRows(keys: string[], histories: RowHistory[]): void {
    assert(this.rowMap.size === 0 && (this.staged === null || this.staged.size === 0), 'a checkpoint loads into an empty table');
    this.rowMap = SortedMap.fromSorted(compareCodePoints, keys, histories);
    for (const history of histories) {
      this.versionCount += history.count;
      if (history.json !== null) this.liveRows++;
    }
  }

  private *allHistories(): Iterable<RowHistory> {
    yield* this.rowMap.values();
    if (this.staged !== null) yield* this.staged.values();
  }
}

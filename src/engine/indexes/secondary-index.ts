// A secondary index on one field path: every value the field ever held (in any version) → the rows that held it,
// each value's rows kept in key order. Entries are never removed when a row changes, so the index is a superset for
// every snapshot; readers re-check each candidate against the version they read (unless the row has had one version
// only: then every entry of it describes that version). That keeps time travel and the index trivially consistent.
//
// The index holds rows, not keys: a candidate is read without looking its key up again (for 10 candidates that
// lookup cost more than everything else a query does per row), and a value's rows come out in key order without a
// sort, so a page of a large value stops reading at its limit.

import { assert } from '../../assert.js';
import { canonicalJson, compareCodePoints, sortByKey, typeRank } from '../json/index.js';
import type { IndexCandidates, IndexLookup, RowRef } from '../query/source.js';
import type { Json } from '../types.js';
import { SortedMap, type ProbeComparator } from '../storage/sorted-map.js';

/** A normalized index value: scalars as they are, arrays and objects as canonical JSON text. */
export type IndexValue = null | boolean | number | string | { json: string };

/**
 * The rows of one value, in key order: one row, an array (cheap while short), or a RowList. A row is never an array
 * or a RowList, so the three shapes tell themselves apart.
 */
type Rows<Row extends RowRef> = Row | Row[] | RowList<Row>;

// Short row lists stay arrays, kept in order by insertion; longer ones become RowLists so that adding stays O(1).
const rowArrayLengthMax = 16;

/**
 * The rows of a value held by many: a Set for membership, and the same rows in key order for reading. A row joining
 * past the last key is appended; one joining anywhere else drops the order, rebuilt by the next read (so a list
 * read between writes in random key order is sorted once per read, as every query once sorted its candidates).
 * A list loaded from a checkpoint is in order and builds its Set on the first add only.
 */
class RowList<Row extends RowRef> {
  private members: Set<Row> | null = null;
  private ordered: Row[] | null;

  constructor(ordered: Row[]) {
    this.ordered = ordered;
  }

  get size(): number {
    return this.members === null ? this.ordered!.length : this.members.size;
  }

  add(row: Row): void {
    this.members ??= new Set(this.ordered!);
    if (this.members.has(row)) return;
    this.members.add(row);
    const ordered = this.ordered;
    if (ordered !== null && compareCodePoints(ordered[ordered.length - 1]!.key, row.key) < 0) ordered.push(row);
    else this.ordered = null;
  }

  inOrder(): readonly Row[] {
    return (this.ordered ??= sortByKey([...this.members!]));
  }
}

function compareIndexValues(a: IndexValue, b: IndexValue): number {
  // The query layer's type order; a composite {json} value ranks as an object, after every scalar.
  const ra = typeRank(a as Json);
  const rb = typeRank(b as Json);
  if (ra !== rb) return ra - rb;
  switch (ra) {
    case 1:
      return 0;
    case 2:
      return Number(a) - Number(b);
    case 3:
      return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
    case 4:
      return compareCodePoints(a as string, b as string);
    default:
      return compareCodePoints((a as { json: string }).json, (b as { json: string }).json);
  }
}

/**
 * A search for a string holding no unit of U+D800 or above may compare it with the string entries natively (see
 * compareCodePoints.forProbe): an equality lookup of a string value is the commonest search of an index.
 */
(compareIndexValues as ProbeComparator<IndexValue>).forProbe = (probe) => {
  if (typeof probe !== 'string') return compareIndexValues;
  const strings = compareCodePoints.forProbe(probe);
  if (strings === compareCodePoints) return compareIndexValues;
  return (a, b) => (typeof a === 'string' && typeof b === 'string' ? strings(a, b) : compareIndexValues(a, b));
};

function normalizeIndexValue(value: Json): IndexValue {
  if (value === null || typeof value !== 'object') return value;
  return { json: canonicalJson(value) };
}

/** `rows` with `row` added: the same array or RowList grown in place, or a new Rows when its shape changes. */
function withRow<Row extends RowRef>(rows: Rows<Row> | undefined, row: Row): Rows<Row> {
  if (rows === undefined) return row;
  if (rows instanceof RowList) {
    rows.add(row);
    return rows;
  }
  if (!Array.isArray(rows)) {
    if (rows === row) return rows;
    return compareCodePoints(rows.key, row.key) < 0 ? [rows, row] : [row, rows];
  }
  if (rows[rows.length - 1] === row || rows.includes(row)) return rows;
  let at = rows.length;
  while (at > 0 && compareCodePoints(rows[at - 1]!.key, row.key) > 0) at--;
  if (rows.length < rowArrayLengthMax) {
    rows.splice(at, 0, row);
    return rows;
  }
  return new RowList([...rows.slice(0, at), row, ...rows.slice(at)]);
}

/** The rows of a value in key order, as an array. */
function rowsInOrder<Row extends RowRef>(rows: Rows<Row>): readonly Row[] {
  if (rows instanceof RowList) return rows.inOrder();
  return Array.isArray(rows) ? rows : [rows];
}

function rowCount<Row extends RowRef>(rows: Rows<Row>): number {
  if (rows instanceof RowList) return rows.size;
  return Array.isArray(rows) ? rows.length : 1;
}

/** A list of rows in key order (without repeats) as Rows. */
function rowsOfOrdered<Row extends RowRef>(ordered: Row[]): Rows<Row> {
  if (ordered.length === 1) return ordered[0]!;
  return ordered.length <= rowArrayLengthMax ? ordered : new RowList(ordered);
}

/**
 * Entries gathered while recovery stages the index: hashed by value, since their order is needed only once, when
 * the sorted map is built. Scalars are their own hash keys; composite values are keyed by their canonical JSON.
 */
interface Staged<Row> {
  scalars: Map<null | boolean | number | string, StagedRows<Row>>;
  composites: Map<string, StagedRows<Row>>;
}

/** A value's rows in arrival order; `repeats` once a row that may already be there was appended without a check. */
interface StagedRows<Row> {
  rows: Row[];
  repeats: boolean;
}

function stageEntry<Row>(staged: Staged<Row>, value: IndexValue, row: Row, rowIsNew: boolean): void {
  let entry: StagedRows<Row> | undefined;
  if (value !== null && typeof value === 'object') {
    entry = staged.composites.get(value.json);
    if (entry === undefined) staged.composites.set(value.json, (entry = { rows: [], repeats: false }));
  } else {
    entry = staged.scalars.get(value);
    if (entry === undefined) staged.scalars.set(value, (entry = { rows: [], repeats: false }));
  }
  const rows = entry.rows;
  if (rows.length > 0 && rows[rows.length - 1] === row) return;
  // A row new to the table cannot be listed yet; any other one is appended too and duplicates go at the end.
  if (!rowIsNew && rows.length > 0) entry.repeats = true;
  rows.push(row);
}

/** The Rows of staged rows: duplicates dropped, put in key order (already in order, as rows arriving by key are, it is one pass). */
function rowsOfStaged<Row extends RowRef>(entry: StagedRows<Row>): Rows<Row> {
  return rowsOfOrdered(sortByKey(entry.repeats ? [...new Set(entry.rows)] : entry.rows));
}

const noCandidates: IndexCandidates<never> = { rows: [], inKeyOrder: true };

export class SecondaryIndex<Row extends RowRef> {
  readonly field: string;
  readonly path: readonly string[];
  private entries = new SortedMap<IndexValue, Rows<Row>>(compareIndexValues);
  private staged: Staged<Row> | null = null;

  constructor(field: string) {
    this.field = field;
    this.path = field.split('.');
  }

  get distinctValues(): number {
    assert(this.staged === null, 'a staged index is not readable');
    return this.entries.size;
  }

  /**
   * Records that `row` held `value`; a missing field (undefined) is not indexed. `rowIsNew` promises that the
   * table had no version of the row before, so that staging may skip the duplicate check.
   */
  add(value: Json | undefined, row: Row, rowIsNew = false): void {
    if (value === undefined) return;
    const normalized = normalizeIndexValue(value);
    if (this.staged !== null) {
      stageEntry(this.staged, normalized, row, rowIsNew);
      return;
    }
    const existing = this.entries.get(normalized);
    const grown = withRow(existing, row);
    if (grown !== existing) this.entries.set(normalized, grown);
  }

  /** From now until finishStaging, adds go to hash maps; nothing may read the index meanwhile. */
  beginStaging(): void {
    this.staged ??= { scalars: new Map(), composites: new Map() };
  }

  /**
   * Orders the staged entries and folds them into the index. Few beside many loaded ones (a short log after a
   * checkpoint) are inserted one by one; otherwise the loaded ones join the staged and the map is built in bulk.
   */
  finishStaging(): void {
    const staged = this.staged;
    if (staged === null) return;
    this.staged = null;
    const stagedCount = staged.scalars.size + staged.composites.size;
    if (this.entries.size > 4 * stagedCount) {
      for (const [value, entry] of staged.scalars) this.merge(value, entry.rows);
      for (const [json, entry] of staged.composites) this.merge({ json }, entry.rows);
      return;
    }
    for (const [value, rows] of this.entries.entries()) {
      for (const row of rowsInOrder(rows)) stageEntry(staged, value, row, false);
    }
    const values: IndexValue[] = [...staged.scalars.keys()];
    const rowSets: Rows<Row>[] = [...staged.scalars.values()].map(rowsOfStaged);
    for (const [json, entry] of staged.composites) {
      values.push({ json });
      rowSets.push(rowsOfStaged(entry));
    }
    const order = values.map((_, i) => i).sort((a, b) => compareIndexValues(values[a]!, values[b]!));
    this.entries = SortedMap.fromSorted<IndexValue, Rows<Row>>(
      compareIndexValues,
      order.map((i) => values[i]!),
      order.map((i) => rowSets[i]!),
    );
  }

  private merge(value: IndexValue, rows: Iterable<Row>): void {
    const existing = this.entries.get(value);
    let grown = existing;
    for (const row of rows) grown = withRow(grown, row);
    if (grown !== existing) this.entries.set(value, grown!);
  }

  /**
   * Loads a checkpoint's entries, ascending by value, each value's rows in key order without repeats, into an index
   * that holds none yet. Long lists stay arrays until a row is added to them, so a load builds no Sets.
   */
  loadSorted(values: IndexValue[], rows: Array<Row | Row[]>): void {
    assert(this.entries.size === 0, 'a checkpoint loads into an empty index');
    this.entries = SortedMap.fromSorted<IndexValue, Rows<Row>>(
      compareIndexValues,
      values,
      rows.map((each) => (Array.isArray(each) ? rowsOfOrdered(each) : each)),
    );
  }

  /**
   * The rows that held a value the lookup matches: a superset of the rows whose version at any snapshot matches it.
   * An equality lookup answers one value's rows, in key order without repeats; a range answers several values' rows,
   * one value after another.
   */
  candidates(lookup: IndexLookup): IndexCandidates<Row> {
    assert(this.staged === null, 'a staged index is not readable');
    if (lookup.kind === 'eq') {
      const rows = this.entries.get(normalizeIndexValue(lookup.value));
      return rows === undefined ? noCandidates : { rows: rowsInOrder(rows), inKeyOrder: true };
    }
    return { rows: this.rangeRows(lookup), inKeyOrder: false };
  }

  estimate(lookup: IndexLookup, cap = 100_000): number {
    assert(this.staged === null, 'a staged index is not readable');
    if (lookup.kind === 'eq') {
      const rows = this.entries.get(normalizeIndexValue(lookup.value));
      return rows === undefined ? 0 : Math.min(cap, rowCount(rows));
    }
    let count = 0;
    for (const rows of this.rangeRowSets(lookup)) {
      count += rowCount(rows);
      if (count >= cap) return cap;
    }
    return count;
  }

  /** Every entry in index order, each value's rows in key order, for checkpoints. */
  *dump(): Iterable<[IndexValue, readonly Row[]]> {
    assert(this.staged === null, 'a staged index is not readable');
    for (const [value, rows] of this.entries.entries()) yield [value, rowsInOrder(rows)];
  }

  private *rangeRows(lookup: Extract<IndexLookup, { kind: 'range' }>): Iterable<Row> {
    for (const rows of this.rangeRowSets(lookup)) yield* rowsInOrder(rows);
  }

  private *rangeRowSets(lookup: Extract<IndexLookup, { kind: 'range' }>): Iterable<Rows<Row>> {
    const { lower, upper } = lookup;
    const sample = (lower ?? upper)?.value;
    if (sample === undefined) return;
    const typeLow: IndexValue = typeof sample === 'number' ? -Infinity : '';
    const start: IndexValue = lower ? lower.value : typeLow;
    const startInclusive = lower ? lower.inclusive : true;
    for (const [value, rows] of this.entries.entries({ from: start })) {
      if (typeof value !== typeof sample) return;
      if (!startInclusive && compareIndexValues(value, start) === 0) continue;
      if (upper) {
        const order = compareIndexValues(value, upper.value);
        if (order > 0 || (order === 0 && !upper.inclusive)) return;
      }
      yield rows;
    }
  }
}

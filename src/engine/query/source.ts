// The contract between the query executor and the storage it reads: a table as of one snapshot.
// The storage side (engine/database.ts) implements RowSource; the query side only consumes it.

import { extractPath, FieldReader, getSegments, type PathSegments } from '../json/index.js';
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

/**
 * Fields a row reads out of its text before it is parsed whole. A scan for one field costs a fraction of a parse
 * (measured: see docs/engine.md, "Measurements behind the design"), so a filter on a field or two never parses a
 * row it rejects, nor one a page answers as text; a filter on many fields parses once instead of scanning many times.
 */
const textFieldReadsMax = 2;

/** A document read from storage: its stored JSON text, parsed only when something needs the whole document. */
export class StoredRow extends FieldReader {
  readonly key: string;
  /** The stored text: a page without `select` answers it as it is. */
  readonly json: string;
  /**
   * True when the source promises that its indexes list this row under this document's values only (the row has
   * had no other version), so a candidate an index lookup found satisfies that lookup without a re-check.
   */
  readonly indexedExactly: boolean;
  private parsed: Doc | undefined = undefined;
  private textReads = 0;

  /** `parsed`, when the caller holds the document already, must be JSON.parse(json). */
  constructor(key: string, json: string, parsed?: Doc, indexedExactly = false) {
    super();
    this.key = key;
    this.json = json;
    this.parsed = parsed;
    this.indexedExactly = indexedExactly;
  }

  get doc(): Doc {
    return (this.parsed ??= JSON.parse(this.json) as Doc);
  }

  field(segments: PathSegments): Json | undefined {
    if (this.parsed === undefined && this.textReads < textFieldReadsMax) {
      this.textReads++;
      return extractPath(this.json, segments);
    }
    return getSegments(this.doc, segments);
  }
}

/**
 * A row a source yields as a candidate: its key, and whatever else the source keeps to read it back without looking
 * the key up again (a snapshot source yields the rows' histories themselves). Any object with a key names that row.
 */
export interface RowRef {
  readonly key: string;
}

/** What an index lookup found. */
export interface IndexCandidates<Row extends RowRef = RowRef> {
  /** A superset of the rows whose document at the snapshot satisfies the lookup. */
  rows: Iterable<Row>;
  /** True when `rows` is an array in key order without repeats; otherwise any order, possibly with repeats. */
  inKeyOrder: boolean;
}

export interface RowSource {
  readonly table: TableDef;
  /** The snapshot every read of this source sees. */
  readonly seq: number;
  /**
   * Rows in key order, strictly after `afterKey` when given. May yield rows that have no live version at this
   * snapshot (readRef() then answers null): callers must not count them.
   */
  rows(afterKey?: string): Iterable<RowRef>;
  /** Candidate rows for a lookup on an indexed field; callers re-check each against the row readRef() answers. */
  indexRows(field: string, lookup: IndexLookup): IndexCandidates;
  /** Upper bound on how many candidates indexRows(field, lookup) would yield (for plans). */
  indexEstimate(field: string, lookup: IndexLookup): number;
  /** The document under `key` at this snapshot, or null when absent or deleted. */
  read(key: string): Doc | null;
  /** The same, with the stored JSON text it was parsed from (a page without `select` answers that text as is). */
  readRow(key: string): StoredRow | null;
  /** readRow for a row this source yielded (or any RowRef: then by its key). */
  readRef(ref: RowRef): StoredRow | null;
  /** Live rows at the newest state (an estimate for plans). */
  rowCountEstimate(): number;
  /**
   * Every version of every key up to `seq`, keys in order (strictly after `afterKey` when given) and each key's
   * versions oldest first.
   */
  versions(afterKey?: string): Iterable<HistoryEntry>;
}

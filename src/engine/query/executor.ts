// The executor: reads one snapshot through a RowSource along the chosen access path and answers one page.
//
// Paging rule for every query kind: a page ends after `limit` rows, or earlier, before the row whose JSON text would
// take the page past pageBytesMax (it always holds its first row). Only when a row is left over is there a next
// page, and the cursor then points just after the last row returned, so a page cut by size resumes exactly like
// one cut by `limit`. Positions are values, not offsets (except for aggregate groups), so resuming never
// re-reads the rows before the position:
//   key order     position = last key; resume with keys strictly after it.
//   orderBy       position = (orderBy values, key) of the last row; ties break by key ascending, whatever
//                 each key's dir, so (values, key) is a total order and every row comes exactly once.
//   history       position = (key, seq) of the last version, plus the key before it in the version stream,
//                 since a RowSource resumes only strictly after a key.

import { DriftError } from '../../errors.js';
import { limits } from '../../limits.js';
import type { Doc, Json } from '../types.js';
import { aggregatePage } from './aggregate.js';
import type { CompiledQuery, OrderKey } from './compile.js';
import { encodeCursor } from './cursor.js';
import type { CursorPosition } from './cursor.js';
import { compareCodePoints, compareJson } from '../json/index.js';
import { chooseAccess, tooManyRows } from './planner.js';
import type { Access } from './planner.js';
import { compileProjection } from './project.js';
import type { RowRef, RowSource, StoredRow } from './source.js';
import type { QueryPage } from './spec.js';

export interface ExecuteOptions {
  /** Rows (or versions) one query may read before it is refused; defaults to limits.queryRowsExaminedMax. */
  rowsExaminedMax?: number;
  /** Groups one aggregate query may build; defaults to limits.queryGroupsMax. */
  groupsMax?: number;
  /** JSON text of the rows of one page; defaults to limits.pageBytesMax. */
  pageBytesMax?: number;
}

/** Counts rows read and refuses the query past its bound, so one query cannot hold the event loop for long. */
class Budget {
  examined = 0;

  constructor(readonly max: number) {}

  spend(): void {
    this.examined++;
    if (this.examined > this.max) throw tooManyRows(this.max);
  }
}

/**
 * Where a page ends: after `limit` rows, or before the row that would take its JSON text past `bytesMax`. The first
 * row always fits, so a document larger than the bound still comes back, alone, and paging always advances.
 */
class PageCut {
  rows = 0;
  bytes = 0;

  constructor(
    readonly limit: number,
    readonly bytesMax: number,
  ) {}

  /** True when a row of `bytes` belongs on the page, counting it; false when the page ends before it. */
  admit(bytes: number): boolean {
    if (this.rows >= this.limit || (this.rows > 0 && this.bytes + bytes > this.bytesMax)) return false;
    this.rows++;
    this.bytes += bytes;
    return true;
  }
}

/** A row that exists at the snapshot and satisfies the whole predicate. */
export type MatchedRow = StoredRow;

/** Answers one page of `q` at `source`'s snapshot, which must be the snapshot of q's cursor when it has one. */
export function executeQuery(q: CompiledQuery, source: RowSource, options: ExecuteOptions = {}): QueryPage {
  if (q.cursor !== null && q.cursor.seq !== source.seq) {
    throw new DriftError('validation_failed', `cursor reads snapshot ${q.cursor.seq}, not ${source.seq}`, {
      errors: [{ instancePath: '/cursor', message: 'was made at a different snapshot' }],
    });
  }
  const budget = new Budget(options.rowsExaminedMax ?? limits.queryRowsExaminedMax);
  const cut = new PageCut(q.limit, options.pageBytesMax ?? limits.pageBytesMax);
  if (q.kind === 'history') return historyPage(q, source, budget, cut);
  const access = chooseAccess(q, source, budget.max);
  const matcher = new Matcher(q, source, access, budget);
  switch (q.kind) {
    case 'aggregate':
      return aggregatePage(q, matcher.all(access.rows()), {
        seq: source.seq,
        groupsMax: options.groupsMax ?? limits.queryGroupsMax,
      });
    default:
      return q.orderBy.length > 0 ? orderedPage(q, source.seq, access, matcher, cut) : keyOrderPage(q, source.seq, access, matcher, cut);
  }
}

/**
 * Reads candidates at the snapshot and keeps those that exist there and satisfy the whole predicate. A row the
 * access path's index lookup decides (the lookup is the whole where, and the source lists the row under its one
 * version's values only) needs no re-check.
 */
class Matcher {
  private readonly predicate: CompiledQuery['predicate'];
  private readonly decided: boolean;

  constructor(
    q: CompiledQuery,
    private readonly source: RowSource,
    access: Access,
    private readonly budget: Budget,
  ) {
    this.predicate = q.predicate;
    this.decided = access.decided;
  }

  /** The candidate's row when it matches, else null; counts it against the budget either way. */
  match(ref: RowRef): MatchedRow | null {
    this.budget.spend();
    const row = this.source.readRef(ref);
    return row !== null && ((this.decided && row.indexedExactly) || this.predicate(row)) ? row : null;
  }

  *all(refs: Iterable<RowRef>): Iterable<MatchedRow> {
    for (const ref of refs) {
      const row = this.match(ref);
      if (row !== null) yield row;
    }
  }
}

function keyOrderPage(q: CompiledQuery, seq: number, access: Access, matcher: Matcher, cut: PageCut): QueryPage {
  const position = q.cursor?.position;
  const afterKey = position?.kind === 'key' ? position.key : undefined;
  const page: MatchedRow[] = [];
  let more = false;
  for (const ref of access.rows(afterKey)) {
    const row = matcher.match(ref);
    if (row === null) continue;
    if (!cut.admit(row.json.length)) {
      more = true;
      break;
    }
    page.push(row);
  }
  return finishPage(q, seq, page, more, (last) => ({ kind: 'key', key: last.key }));
}

interface OrderedRow {
  row: MatchedRow;
  key: string;
  values: (Json | undefined)[];
}

function orderedPage(q: CompiledQuery, seq: number, access: Access, matcher: Matcher, cut: PageCut): QueryPage {
  const compare = (a: Omit<OrderedRow, 'row'>, b: OrderedRow) => compareOrdered(q.orderBy, a, b);
  const position = q.cursor?.position;
  const after = position?.kind === 'ordered' ? position : null;
  const keep = q.limit + 1;
  // Sort and trim whenever the buffer doubles: O(n log limit) time, O(limit) memory, whatever the table size.
  let buffer: OrderedRow[] = [];
  for (const row of matcher.all(access.rows())) {
    const ordered = { row, key: row.key, values: q.orderBy.map((order) => row.field(order.segments)) };
    if (after !== null && compare(after, ordered) >= 0) continue;
    buffer.push(ordered);
    if (buffer.length >= 2 * keep + 64) buffer = buffer.sort(compare).slice(0, keep);
  }
  buffer.sort(compare);
  const ordered = buffer.slice(0, keep);
  let taken = 0;
  while (taken < ordered.length && cut.admit(ordered[taken]!.row.json.length)) taken++;
  const page = ordered.slice(0, taken);
  // A cursor is made only when a row is left over; it points after the page's last row.
  return finishPage(q, seq, page.map((entry) => entry.row), taken < ordered.length, () => {
    const last = page[page.length - 1]!;
    return { kind: 'ordered', values: last.values, key: last.key };
  });
}

function compareOrdered(
  orderBy: OrderKey[],
  a: { values: (Json | undefined)[]; key: string },
  b: { values: (Json | undefined)[]; key: string },
): number {
  for (let i = 0; i < orderBy.length; i++) {
    const order = compareJson(a.values[i], b.values[i]);
    if (order !== 0) return (orderBy[i] as OrderKey).descending ? -order : order;
  }
  return compareCodePoints(a.key, b.key);
}

/** Answers a page's rows, projecting each, with a cursor after the last one when `more` rows are left over. */
function finishPage(
  q: CompiledQuery,
  seq: number,
  page: MatchedRow[],
  more: boolean,
  positionOf: (last: MatchedRow) => CursorPosition,
): QueryPage {
  const last = page[page.length - 1];
  const nextCursor =
    more && last !== undefined ? encodeCursor({ seq, fingerprint: q.fingerprint, position: positionOf(last) }) : null;
  if (q.select === null) return new StoredDocumentsPage(page, nextCursor);
  const project = compileProjection(q.select);
  return { rows: page.map((row) => project(row.doc)), nextCursor };
}

/** A page of whole documents: answered as their stored text, and parsed only if something reads `rows`. */
class StoredDocumentsPage implements QueryPage {
  readonly rowsJson: string[];
  readonly nextCursor: string | null;
  // Private fields, so that a page compares and prints as its rows and cursor only.
  readonly #stored: MatchedRow[];
  #parsed: Doc[] | undefined = undefined;

  constructor(stored: MatchedRow[], nextCursor: string | null) {
    this.#stored = stored;
    this.rowsJson = stored.map((row) => row.json);
    this.nextCursor = nextCursor;
  }

  get rows(): Doc[] {
    return (this.#parsed ??= this.#stored.map((row) => row.doc));
  }
}

/**
 * Every version whose document matches, ordered by key then seq; deletes (doc null) never match. A row is
 * {key, seq, ts (RFC 3339 with milliseconds), op, doc}, and `select` projects `doc`.
 */
function historyPage(q: CompiledQuery, source: RowSource, budget: Budget, cut: PageCut): QueryPage {
  const project = compileProjection(q.select);
  const position = q.cursor?.position.kind === 'version' ? q.cursor.position : null;
  const found: { row: Doc; afterKey: string | null; key: string; seq: number }[] = [];
  let more = false;
  let previousKey = position?.afterKey ?? null;
  let currentKey: string | null = null;
  for (const version of source.versions(previousKey ?? undefined)) {
    if (version.key !== currentKey) {
      if (currentKey !== null) previousKey = currentKey;
      currentKey = version.key;
    }
    if (position !== null && version.key === position.key && version.seq <= position.seq) continue;
    budget.spend();
    if (version.doc === null || !q.predicate(version.doc)) continue;
    const row: Doc = {
      key: version.key,
      seq: version.seq,
      ts: new Date(version.ts).toISOString(),
      op: version.op,
      doc: project(version.doc),
    };
    // A version source holds parsed documents, not their text: measure the row as the answer will write it.
    if (!cut.admit(JSON.stringify(row).length)) {
      more = true;
      break;
    }
    found.push({ row, afterKey: previousKey, key: version.key, seq: version.seq });
  }
  const last = found[found.length - 1];
  const nextCursor =
    more && last !== undefined
      ? encodeCursor({
          seq: source.seq,
          fingerprint: q.fingerprint,
          position: { kind: 'version', afterKey: last.afterKey, key: last.key, seq: last.seq },
        })
      : null;
  return { rows: found.map((entry) => entry.row), nextCursor };
}

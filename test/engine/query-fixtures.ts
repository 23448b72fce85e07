// Test fixtures for the query layer: an in-memory RowSource built from a list of row events, and a naive
// reference implementation of the query language written independently of src/engine/query, for model tests.

import { StoredRow, type IndexCandidates, type IndexLookup, type RowRef, type RowSource } from '../../src/engine/query/index.js';
import type { Doc, HistoryEntry, Json, RowOp, TableDef } from '../../src/engine/types.js';

export interface RowEvent {
  key: string;
  op: RowOp;
  /** The document after the event; null for a delete. */
  doc: Doc | null;
}

export function tableDef(indexes: string[] = [], primaryKey = 'id'): TableDef {
  return { name: 'items', primaryKey, indexes, createdSeq: 0 };
}

/** Events numbered seq 1, 2, … with ts = 1_700_000_000_000 + seq * 1000 + 7 (so milliseconds show in ISO text). */
export function numberEvents(events: RowEvent[]): HistoryEntry[] {
  return events.map((event, i) => ({ ...event, seq: i + 1, ts: 1_700_000_000_000 + (i + 1) * 1000 + 7 }));
}

export interface MemorySourceOptions {
  table: TableDef;
  events: RowEvent[];
  /** Snapshot; defaults to the last event's seq. */
  seq?: number;
  /**
   * Make indexRows a sloppy superset: extra non-matching rows and repeats, out of order, as the contract allows.
   * Otherwise it yields exactly the matching rows, in key order, and every row read says so (indexedExactly).
   */
  sloppyIndex?: boolean;
}

/** A RowSource over a list of events, as of one snapshot; also counts read() calls. */
export class MemorySource implements RowSource {
  readonly table: TableDef;
  readonly seq: number;
  reads = 0;
  private readonly history: HistoryEntry[];
  private readonly live = new Map<string, Doc>();
  private readonly allKeys: string[];
  private readonly sloppy: boolean;

  constructor(options: MemorySourceOptions) {
    this.table = options.table;
    const numbered = numberEvents(options.events);
    this.seq = options.seq ?? numbered.length;
    this.history = numbered.filter((entry) => entry.seq <= this.seq);
    for (const entry of this.history) {
      if (entry.doc === null) this.live.delete(entry.key);
      else this.live.set(entry.key, entry.doc);
    }
    // Deleted keys stay in keys(): the contract lets a source yield keys with no live row.
    this.allKeys = [...new Set(this.history.map((entry) => entry.key))].sort(refCompareStrings);
    this.sloppy = options.sloppyIndex ?? false;
  }

  rows(afterKey?: string): Iterable<RowRef> {
    const keys = afterKey === undefined ? this.allKeys : this.allKeys.filter((key) => refCompareStrings(key, afterKey) > 0);
    return keys.map((key) => ({ key }));
  }

  indexRows(field: string, lookup: IndexLookup): IndexCandidates {
    return { rows: this.indexKeys(field, lookup).map((key) => ({ key })), inKeyOrder: !this.sloppy };
  }

  private indexKeys(field: string, lookup: IndexLookup): string[] {
    if (!this.table.indexes.includes(field)) throw new Error(`no index on ${field}`);
    const exact = [...this.live].filter(([, doc]) => indexMatches(refGet(doc, field), lookup)).map(([key]) => key);
    if (!this.sloppy) return exact.sort(refCompareStrings);
    // Every third key again, whatever it holds, and the real candidates twice, in reverse order.
    const extra = this.allKeys.filter((_, i) => i % 3 === 0);
    return [...exact, ...extra, ...exact].reverse();
  }

  indexEstimate(field: string, lookup: IndexLookup): number {
    return this.indexKeys(field, lookup).length;
  }

  read(key: string): Doc | null {
    this.reads++;
    return this.live.get(key) ?? null;
  }

  readRow(key: string): StoredRow | null {
    const doc = this.read(key);
    // The model's own object, so answers compare to it exactly (fast-check's documents have null prototypes).
    return doc === null ? null : new StoredRow(key, JSON.stringify(doc), doc, !this.sloppy);
  }

  readRef(ref: RowRef): StoredRow | null {
    return this.readRow(ref.key);
  }

  rowCountEstimate(): number {
    return this.live.size;
  }

  versions(afterKey?: string): Iterable<HistoryEntry> {
    const sorted = [...this.history].sort((a, b) => refCompareStrings(a.key, b.key) || a.seq - b.seq);
    return afterKey === undefined ? sorted : sorted.filter((entry) => refCompareStrings(entry.key, afterKey) > 0);
  }
}

function indexMatches(value: Json | undefined, lookup: IndexLookup): boolean {
  if (value === undefined || (value !== null && typeof value === 'object')) return false;
  if (lookup.kind === 'eq') return value === lookup.value;
  const type = typeof (lookup.lower ?? lookup.upper)!.value;
  if (typeof value !== type) return false;
  const v = value as number | string;
  const cmp = (a: number | string, b: number | string) =>
    typeof a === 'string' ? refCompareStrings(a, b as string) : Math.sign(a - (b as number));
  if (lookup.lower && (lookup.lower.inclusive ? cmp(v, lookup.lower.value) < 0 : cmp(v, lookup.lower.value) <= 0))
    return false;
  if (lookup.upper && (lookup.upper.inclusive ? cmp(v, lookup.upper.value) > 0 : cmp(v, lookup.upper.value) >= 0))
    return false;
  return true;
}

/** A source of live documents only: each doc is put once, under String(doc[pk]). */
export function sourceOf(
  docs: Doc[],
  options: { indexes?: string[]; sloppyIndex?: boolean; primaryKey?: string } = {},
): MemorySource {
  const table = tableDef(options.indexes ?? [], options.primaryKey ?? 'id');
  const events = docs.map((doc): RowEvent => ({ key: String(doc[table.primaryKey]), op: 'put', doc }));
  return new MemorySource({ table, events, sloppyIndex: options.sloppyIndex ?? false });
}

// ---------------------------------------------------------------------------------------------------------------
// The reference model: deliberately naive, and sharing no code with src/engine/query.

export function refCompareStrings(a: string, b: string): number {
  const pa = Array.from(a, (c) => c.codePointAt(0)!);
  const pb = Array.from(b, (c) => c.codePointAt(0)!);
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) if (pa[i] !== pb[i]) return pa[i]! - pb[i]!;
  return pa.length - pb.length;
}

export function refGet(doc: unknown, path: string): Json | undefined {
  let current: unknown = doc;
  for (const part of path.split('.')) {
    if (typeof current !== 'object' || current === null || Array.isArray(current)) return undefined;
    if (!Object.prototype.hasOwnProperty.call(current, part)) return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current as Json;
}

/** JSON text with object keys sorted: deep-equal values (and -0, 0) give the same text. */
export function refCanonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([x], [y]) => refCompareStrings(x, y)))
      : v,
  );
}

export function refEqual(a: unknown, b: unknown): boolean {
  return refCanonical(a) === refCanonical(b);
}

const rank = (v: unknown): number =>
  v === undefined
    ? 0
    : v === null
      ? 1
      : typeof v === 'boolean'
        ? 2
        : typeof v === 'number'
          ? 3
          : typeof v === 'string'
            ? 4
            : Array.isArray(v)
              ? 5
              : 6;

/** missing < null < false < true < numbers < strings (code points) < arrays (lexicographic) < objects (sorted entries). */
export function refOrder(a: unknown, b: unknown): number {
  if (rank(a) !== rank(b)) return rank(a) - rank(b);
  if (typeof a === 'boolean' || typeof a === 'number') return Number(a) - Number(b) || 0;
  if (typeof a === 'string') return refCompareStrings(a, b as string);
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    for (let i = 0; i < Math.min(a.length, bb.length); i++) {
      const c = refOrder(a[i], bb[i]);
      if (c !== 0) return c;
    }
    return a.length - bb.length;
  }
  if (a === null || a === undefined) return 0;
  const ea = Object.entries(a).sort(([x], [y]) => refCompareStrings(x, y));
  const eb = Object.entries(b as object).sort(([x], [y]) => refCompareStrings(x, y));
  for (let i = 0; i < Math.min(ea.length, eb.length); i++) {
    const c = refCompareStrings(ea[i]![0], eb[i]![0]) || refOrder(ea[i]![1], eb[i]![1]);
    if (c !== 0) return c;
  }
  return ea.length - eb.length;
}

function refCondition(value: Json | undefined, cond: unknown): boolean {
  const isOps =
    typeof cond === 'object' &&
    cond !== null &&
    !Array.isArray(cond) &&
    Object.keys(cond).some((k) => k.startsWith('$'));
  if (!isOps)
    return cond === null ? value === undefined || value === null : value !== undefined && refEqual(value, cond);
  for (const [op, x] of Object.entries(cond as Record<string, unknown>)) {
    if (!refOperator(value, op, x)) return false;
  }
  return true;
}

function refOperator(value: Json | undefined, op: string, x: unknown): boolean {
  const sameType = value !== undefined && value !== null && typeof value === typeof x && typeof x !== 'object';
  switch (op) {
    case '$eq':
      return x === null ? value === undefined || value === null : value !== undefined && refEqual(value, x);
    case '$ne':
      return !refOperator(value, '$eq', x);
    case '$gt':
      return sameType && refOrder(value, x) > 0;
    case '$gte':
      return sameType && refOrder(value, x) >= 0;
    case '$lt':
      return sameType && refOrder(value, x) < 0;
    case '$lte':
      return sameType && refOrder(value, x) <= 0;
    case '$in':
      return (x as unknown[]).some((item) => refOperator(value, '$eq', item));
    case '$nin':
      return !refOperator(value, '$in', x);
    case '$exists':
      return (value !== undefined) === x;
    case '$prefix':
      return (
        typeof value === 'string' &&
        Array.from(value)
          .slice(0, Array.from(x as string).length)
          .join('') === x
      );
    case '$contains':
      return Array.isArray(value) && value.some((item) => refEqual(item, x));
    case '$not':
      return !refCondition(value, x);
    default:
      throw new Error(`model: unknown operator ${op}`);
  }
}

export function refMatch(doc: Doc, where: unknown): boolean {
  if (where === undefined || where === null) return true;
  return Object.entries(where as Record<string, unknown>).every(([key, cond]) => {
    if (key === '$and') return (cond as unknown[]).every((w) => refMatch(doc, w));
    if (key === '$or') return (cond as unknown[]).some((w) => refMatch(doc, w));
    if (key === '$not') return !refMatch(doc, cond);
    return refCondition(refGet(doc, key), cond);
  });
}

export function refProject(doc: Doc, select: string[] | undefined): Doc {
  if (select === undefined) return doc;
  const out: Record<string, unknown> = {};
  // Deepest paths first, so a shorter selected path (`a` after `a.b`) ends up holding its whole value.
  for (const path of [...select].sort((p, q) => q.split('.').length - p.split('.').length)) {
    const value = refGet(doc, path);
    if (value === undefined) continue;
    const parts = path.split('.');
    let target = out;
    for (const part of parts.slice(0, -1)) {
      target[part] ??= {};
      target = target[part] as Record<string, unknown>;
    }
    target[parts[parts.length - 1]!] = value;
  }
  return out as Doc;
}

export interface RefSpec {
  where?: unknown;
  orderBy?: { field: string; dir?: 'asc' | 'desc' }[];
  select?: string[];
}

/** Every live row matching, in the order the query must answer, projected. */
export function refQuery(rows: { key: string; doc: Doc }[], spec: RefSpec): Doc[] {
  const orderBy = spec.orderBy ?? [];
  return rows
    .filter((row) => refMatch(row.doc, spec.where))
    .sort((a, b) => {
      for (const { field, dir } of orderBy) {
        const c = refOrder(refGet(a.doc, field), refGet(b.doc, field));
        if (c !== 0) return dir === 'desc' ? -c : c;
      }
      return refCompareStrings(a.key, b.key);
    })
    .map((row) => refProject(row.doc, spec.select));
}

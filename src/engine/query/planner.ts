// The planner: picks how a query finds its candidate rows — a primary-key lookup, a secondary-index lookup, or a
// scan — from the top-level AND of its where-clause, and explains the choice.
//
// Only conjuncts that every match must satisfy can narrow the candidates: top-level fields and the members of
// top-level $and (recursively). $or and $not never do. Usable conditions:
//   primary key  equality or $in on strings / safe integers; a key is the value's string form (7 → "7").
//   index        equality or $in on non-null scalars, or $gt/$gte/$lt/$lte on numbers or strings (merged per
//                field and type into one range). `{"f": null}` cannot use an index: it matches missing fields,
//                and documents without the field are not in the index.
// The cheapest option by estimate wins (a primary-key lookup on a tie); with one option nothing is estimated. Every
// candidate is re-checked against the full predicate, so a plan only changes speed, never answers; the one
// exception is a candidate the lookup decides: the lookup is the whole where (one equality, $in or single-type range
// on one indexed field) and the source vouches that its indexes list the row under its visible version's values
// only (StoredRow.indexedExactly). History queries always scan: an index describes one snapshot, while history
// matches past versions.

import { DriftError } from '../../errors.js';
import { limits } from '../../limits.js';
import type { Json } from '../types.js';
import type { CompiledQuery } from './compile.js';
import { compareCodePoints, isPlainObject, sortByKey } from '../json/index.js';
import type { IndexBound, IndexLookup, RowRef, RowSource } from './source.js';
import type { Plan } from './spec.js';
import { isOperatorObject } from './where.js';

export interface Access {
  readonly plan: Plan;
  /** Candidate rows with keys strictly after `afterKey`, each once, in code-point order of their keys. */
  rows(afterKey?: string): Iterable<RowRef>;
  /**
   * True when the index lookup is the whole where: a candidate read as indexedExactly (StoredRow) then satisfies it
   * without a re-check.
   */
  readonly decided: boolean;
}

/** One way to a query's candidate rows. Classes rather than closures: a query builds one or two of them. */
interface Path {
  readonly decided: boolean;
  /** Estimated candidates; computed only when paths are compared or the plan is explained. */
  cost(): number;
  plan(cost: number): Plan;
  rows(afterKey?: string): Iterable<RowRef>;
}

type Conjunct = [path: string, condition: unknown];
type Range = { lower?: IndexBound; upper?: IndexBound };

/** The plan explain answers: access path, index, estimated rows, lookup, and how rows get ordered. */
export function planQuery(q: CompiledQuery, source: RowSource): Plan {
  return chooseAccess(q, source).plan;
}

export function chooseAccess(
  q: CompiledQuery,
  source: RowSource,
  rowsExaminedMax: number = limits.queryRowsExaminedMax,
): Access {
  const sort = q.kind === 'aggregate' || q.orderBy.length > 0 ? 'memory' : 'key';
  if (q.kind === 'history') return new ChosenAccess(new Scan(source, true), undefined, 'key', false);
  const equality = indexedEquality(q.spec.where, source.table);
  if (equality !== null) {
    // The commonest query, one equality on one indexed field: its one path, without collecting the general options.
    const lookup: IndexLookup = { kind: 'eq', value: equality.value };
    return new ChosenAccess(new IndexLookups(source, equality.field, [lookup], null, rowsExaminedMax, true), undefined, sort, q.kind === 'aggregate');
  }
  // Any lookup beats a scan; among lookups the lowest estimate wins, primary-key lookups (listed first) on a tie.
  const paths = [...primaryKeyPaths(q, source), ...indexPaths(q, source, rowsExaminedMax)];
  let best: Path;
  let cost: number | undefined;
  if (paths.length === 0) {
    best = new Scan(source, false);
  } else if (paths.length === 1) {
    best = paths[0]!;
  } else {
    const costs = paths.map((path) => path.cost());
    let cheapest = 0;
    for (let i = 1; i < paths.length; i++) if (costs[i]! < costs[cheapest]!) cheapest = i;
    best = paths[cheapest]!;
    cost = costs[cheapest];
  }
  return new ChosenAccess(best, cost, sort, q.kind === 'aggregate');
}

class ChosenAccess implements Access {
  readonly decided: boolean;

  constructor(
    private readonly path: Path,
    private readonly cost: number | undefined,
    private readonly sort: 'memory' | 'key',
    private readonly aggregate: boolean,
  ) {
    this.decided = path.decided;
  }

  // Only explain reads the plan: a query with one way to its rows never estimates how many there are.
  get plan(): Plan {
    const plan: Plan = { ...this.path.plan(this.cost ?? this.path.cost()), sort: this.sort };
    if (this.aggregate) plan.aggregate = true;
    return plan;
  }

  rows(afterKey?: string): Iterable<RowRef> {
    return this.path.rows(afterKey);
  }
}

class Scan implements Path {
  readonly decided = false;

  constructor(
    private readonly source: RowSource,
    private readonly history: boolean,
  ) {}

  cost(): number {
    return this.source.rowCountEstimate();
  }

  plan(cost: number): Plan {
    return this.history ? { access: 'scan', estimatedRows: cost, history: true } : { access: 'scan', estimatedRows: cost };
  }

  rows(afterKey?: string): Iterable<RowRef> {
    return this.source.rows(afterKey);
  }
}

class PrimaryKeys implements Path {
  readonly decided = false;
  private readonly refs: RowRef[];

  /** `keys` in code-point order, without repeats. */
  constructor(private readonly keys: string[]) {
    this.refs = keys.map((key) => ({ key }));
  }

  cost(): number {
    return this.keys.length;
  }

  plan(cost: number): Plan {
    return { access: 'primaryKey', estimatedRows: cost, keys: this.keys };
  }

  rows(afterKey?: string): Iterable<RowRef> {
    return afterKey === undefined ? this.refs : rowsAfter(this.refs, afterKey);
  }
}

class IndexLookups implements Path {
  private gathered: RowRef[] | null = null;

  /** `lookup` is how explain shows the lookups (null: the one equality of `lookups`). */
  constructor(
    private readonly source: RowSource,
    private readonly field: string,
    private readonly lookups: IndexLookup[],
    private readonly lookup: Json | null,
    private readonly rowsExaminedMax: number,
    readonly decided: boolean,
  ) {}

  cost(): number {
    let sum = 0;
    for (const each of this.lookups) sum += this.source.indexEstimate(this.field, each);
    return sum;
  }

  plan(cost: number): Plan {
    return { access: 'index', index: this.field, estimatedRows: cost, lookup: this.lookup ?? lookupJson(this.lookups[0]!) };
  }

  rows(afterKey?: string): Iterable<RowRef> {
    if (this.gathered === null && this.lookups.length === 1) {
      // One lookup whose rows come in key order: read them as they are (a page stops at its limit).
      const found = this.source.indexRows(this.field, this.lookups[0]!);
      if (found.inKeyOrder) {
        const rows = found.rows as readonly RowRef[];
        return afterKey === undefined ? rows : rowsAfter(rows, afterKey);
      }
    }
    const all = this.gather();
    return afterKey === undefined ? all : rowsAfter(all, afterKey);
  }

  /** Rows of several lookups, or of a source that does not keep them in order: gathered once, deduplicated, sorted. */
  private gather(): RowRef[] {
    if (this.gathered !== null) return this.gathered;
    const unique = new Map<string, RowRef>();
    for (const each of this.lookups) {
      for (const row of this.source.indexRows(this.field, each).rows) {
        if (unique.has(row.key)) continue;
        unique.set(row.key, row);
        if (unique.size > this.rowsExaminedMax) throw tooManyRows(this.rowsExaminedMax);
      }
    }
    this.gathered = sortByKey([...unique.values()]);
    return this.gathered;
  }
}

/**
 * A where that is one equality (a non-null scalar, or {"$eq": one}) on one indexed field other than the primary key:
 * its field and value, or null. indexPaths would find that one path, decided, after more work.
 */
function indexedEquality(where: unknown, table: RowSource['table']): { field: string; value: Json } | null {
  const field = soleField(where);
  if (field === null || field === table.primaryKey || !table.indexes.includes(field)) return null;
  let value = (where as { [field: string]: unknown })[field];
  if (isOperatorObject(value)) {
    const ops = Object.keys(value);
    if (ops.length !== 1 || ops[0] !== '$eq') return null;
    value = value.$eq;
  }
  return value === null || value === undefined || typeof value === 'object' ? null : { field, value: value as Json };
}

/** The conditions every match must satisfy: top-level fields and the members of top-level $and, recursively. */
function conjuncts(where: unknown, out: Conjunct[] = []): Conjunct[] {
  if (!isPlainObject(where)) return out;
  for (const [key, condition] of Object.entries(where)) {
    if (key === '$and' && Array.isArray(condition)) condition.forEach((item) => conjuncts(item, out));
    else if (!key.startsWith('$')) out.push([key, condition]);
  }
  return out;
}

/** Equality requirements of one condition: a plain value or $eq (one value), and $in (any of a list). */
function equalityValues(condition: unknown): { values: unknown[]; list: boolean }[] {
  if (!isOperatorObject(condition)) return [{ values: [condition], list: false }];
  const requirements: { values: unknown[]; list: boolean }[] = [];
  if ('$eq' in condition) requirements.push({ values: [condition.$eq], list: false });
  if (Array.isArray(condition.$in)) requirements.push({ values: condition.$in, list: true });
  return requirements;
}

/**
 * Whether `condition` on an indexed field says exactly what an index lookup of `kind` finds: an equality or $in
 * of non-null scalars (the lookup finds the rows holding one of those values), or range operators on one type
 * (numbers or strings: the lookup finds the rows whose value of that type lies in the merged range).
 */
function lookupIsCondition(condition: unknown, kind: 'eq' | 'range'): boolean {
  if (!isOperatorObject(condition)) return kind === 'eq';
  const ops = Object.keys(condition);
  if (kind === 'eq') return ops.length === 1 && (ops[0] === '$eq' || ops[0] === '$in');
  const types = new Set(ops.map((op) => (rangeOps.includes(op) ? typeof condition[op] : 'other')));
  return types.size === 1 && (types.has('number') || types.has('string'));
}

const rangeOps = ['$gt', '$gte', '$lt', '$lte'];

/** The field of a where that is one condition on one field (nothing else), or null. */
function soleField(where: unknown): string | null {
  if (!isPlainObject(where)) return null;
  let field: string | null = null;
  for (const key in where) {
    if (!Object.hasOwn(where, key)) continue;
    if (field !== null || key.startsWith('$')) return null;
    field = key;
  }
  return field;
}

function isKeyValue(value: unknown): value is string | number {
  return typeof value === 'string' || Number.isSafeInteger(value);
}

function primaryKeyPaths(q: CompiledQuery, source: RowSource): Path[] {
  const paths: Path[] = [];
  for (const [field, condition] of conjuncts(q.spec.where)) {
    if (field !== source.table.primaryKey) continue;
    for (const { values } of equalityValues(condition)) {
      if (values.every(isKeyValue)) paths.push(new PrimaryKeys([...new Set(values.map(String))].sort(compareCodePoints)));
    }
  }
  return paths;
}

function indexPaths(q: CompiledQuery, source: RowSource, rowsExaminedMax: number): Path[] {
  const indexed = source.table.indexes;
  const where = q.spec.where;
  const sole = soleField(where);
  const ranges = new Map<string, Map<'number' | 'string', Range>>();
  const paths: Path[] = [];
  for (const [field, condition] of conjuncts(where)) {
    if (!indexed.includes(field)) continue;
    const decided = field === sole && lookupIsCondition(condition, 'eq');
    for (const requirement of equalityValues(condition)) {
      // A Set drops repeated $in values (and -0 next to 0) so the estimate counts each lookup once.
      const values = [...new Set(requirement.values)];
      if (!values.every((value) => value !== null && typeof value !== 'object')) continue;
      const lookups = values.map((value): IndexLookup => ({ kind: 'eq', value: value as Json }));
      const lookup: Json = requirement.list ? { kind: 'in', values: values as Json[] } : { kind: 'eq', value: values[0] as Json };
      paths.push(new IndexLookups(source, field, lookups, lookup, rowsExaminedMax, decided));
    }
    if (isOperatorObject(condition)) mergeRanges(ranges, field, condition);
  }
  for (const [field, byType] of ranges) {
    const decided = field === sole && byType.size === 1 && lookupIsCondition((where as { [key: string]: unknown })[field], 'range');
    for (const range of byType.values()) {
      const lookup: IndexLookup = { kind: 'range', ...range };
      paths.push(new IndexLookups(source, field, [lookup], lookupJson(lookup), rowsExaminedMax, decided));
    }
  }
  return paths;
}

function lookupJson(lookup: IndexLookup): Json {
  if (lookup.kind === 'eq') return { kind: 'eq', value: lookup.value };
  const json: { [key: string]: Json } = { kind: 'range' };
  if (lookup.lower) json.lower = { value: lookup.lower.value, inclusive: lookup.lower.inclusive };
  if (lookup.upper) json.upper = { value: lookup.upper.value, inclusive: lookup.upper.inclusive };
  return json;
}

/** The rows of a key-ordered list whose keys come strictly after `afterKey`. */
function* rowsAfter(rows: readonly RowRef[], afterKey: string): Iterable<RowRef> {
  let lo = 0;
  let hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareCodePoints(rows[mid]!.key, afterKey) > 0) hi = mid;
    else lo = mid + 1;
  }
  for (let i = lo; i < rows.length; i++) yield rows[i]!;
}

/** Tightens the per-type range of `path` with the $gt/$gte/$lt/$lte of one operator object. */
function mergeRanges(
  ranges: Map<string, Map<'number' | 'string', Range>>,
  path: string,
  condition: { [op: string]: unknown },
): void {
  for (const [op, operand] of Object.entries(condition)) {
    if (!['$gt', '$gte', '$lt', '$lte'].includes(op)) continue;
    if (typeof operand !== 'number' && typeof operand !== 'string') continue;
    const type = typeof operand as 'number' | 'string';
    const byType = ranges.get(path) ?? new Map<'number' | 'string', Range>();
    ranges.set(path, byType);
    const range = byType.get(type) ?? {};
    byType.set(type, range);
    const bound: IndexBound = { value: operand, inclusive: op.endsWith('e') };
    if (op.startsWith('$g')) {
      if (range.lower === undefined || tighter(bound, range.lower, 1)) range.lower = bound;
    } else if (range.upper === undefined || tighter(bound, range.upper, -1)) {
      range.upper = bound;
    }
  }
}

/** Whether `bound` narrows the range more than `current`; `direction` 1 for lower bounds, -1 for upper. */
function tighter(bound: IndexBound, current: IndexBound, direction: 1 | -1): boolean {
  const order =
    typeof bound.value === 'string'
      ? compareCodePoints(bound.value, current.value as string)
      : Math.sign(bound.value - (current.value as number));
  return order * direction > 0 || (order === 0 && !bound.inclusive);
}

export function tooManyRows(rowsExaminedMax: number): DriftError {
  return new DriftError(
    'validation_failed',
    `query would examine more than ${rowsExaminedMax} rows; narrow where with a condition on the primary key or an indexed field`,
    { rowsExaminedMax },
  );
}

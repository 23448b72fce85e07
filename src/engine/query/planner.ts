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

interface Option {
  /** Estimated candidates; computed only when options are compared or the plan is explained. */
  cost(): number;
  plan(cost: number): Plan;
  rows(afterKey?: string): Iterable<RowRef>;
  decided: boolean;
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
  if (q.kind === 'history') {
    return {
      plan: { access: 'scan', estimatedRows: source.rowCountEstimate(), sort: 'key', history: true },
      rows: (afterKey) => source.rows(afterKey),
      decided: false,
    };
  }
  // Any lookup beats a scan; among lookups the lowest estimate wins, primary-key lookups (listed first) on a tie.
  const options = [...primaryKeyOptions(q, source), ...indexOptions(q, source, rowsExaminedMax)];
  let best: Option;
  let cost: number | undefined;
  if (options.length === 0) {
    best = scanOption(source);
  } else if (options.length === 1) {
    best = options[0]!;
  } else {
    const costs = options.map((option) => option.cost());
    let cheapest = 0;
    for (let i = 1; i < options.length; i++) if (costs[i]! < costs[cheapest]!) cheapest = i;
    best = options[cheapest]!;
    cost = costs[cheapest];
  }
  return new ChosenAccess(best, cost, sort, q.kind === 'aggregate');
}

class ChosenAccess implements Access {
  readonly decided: boolean;

  constructor(
    private readonly option: Option,
    private readonly cost: number | undefined,
    private readonly sort: 'memory' | 'key',
    private readonly aggregate: boolean,
  ) {
    this.decided = option.decided;
  }

  // Only explain reads the plan: a query with one way to its rows never estimates how many there are.
  get plan(): Plan {
    const plan: Plan = { ...this.option.plan(this.cost ?? this.option.cost()), sort: this.sort };
    if (this.aggregate) plan.aggregate = true;
    return plan;
  }

  rows(afterKey?: string): Iterable<RowRef> {
    return this.option.rows(afterKey);
  }
}

function scanOption(source: RowSource): Option {
  return {
    cost: () => source.rowCountEstimate(),
    plan: (cost) => ({ access: 'scan', estimatedRows: cost }),
    rows: (afterKey) => source.rows(afterKey),
    decided: false,
  };
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
  const keys = Object.keys(where);
  return keys.length === 1 && !keys[0]!.startsWith('$') ? keys[0]! : null;
}

function isKeyValue(value: unknown): value is string | number {
  return typeof value === 'string' || Number.isSafeInteger(value);
}

function primaryKeyOptions(q: CompiledQuery, source: RowSource): Option[] {
  const options: Option[] = [];
  for (const [path, condition] of conjuncts(q.spec.where)) {
    if (path !== source.table.primaryKey) continue;
    for (const { values } of equalityValues(condition)) {
      if (!values.every(isKeyValue)) continue;
      const keys = [...new Set(values.map(String))].sort(compareCodePoints);
      const rows: RowRef[] = keys.map((key) => ({ key }));
      options.push({
        cost: () => keys.length,
        plan: (cost) => ({ access: 'primaryKey', estimatedRows: cost, keys }),
        rows: (afterKey) => (afterKey === undefined ? rows : rowsAfter(rows, afterKey)),
        decided: false,
      });
    }
  }
  return options;
}

function indexOptions(q: CompiledQuery, source: RowSource, rowsExaminedMax: number): Option[] {
  const indexed = source.table.indexes;
  const where = q.spec.where;
  const sole = soleField(where);
  const ranges = new Map<string, Map<'number' | 'string', Range>>();
  const options: Option[] = [];
  for (const [path, condition] of conjuncts(where)) {
    if (!indexed.includes(path)) continue;
    const decided = path === sole && lookupIsCondition(condition, 'eq');
    for (const requirement of equalityValues(condition)) {
      // A Set drops repeated $in values (and -0 next to 0) so the estimate counts each lookup once.
      const values = [...new Set(requirement.values)];
      const list = requirement.list;
      if (!values.every((value) => value !== null && typeof value !== 'object')) continue;
      const lookups = values.map((value): IndexLookup => ({ kind: 'eq', value: value as Json }));
      const lookup: Json = list ? { kind: 'in', values: values as Json[] } : { kind: 'eq', value: values[0] as Json };
      options.push(indexOption(source, path, lookups, lookup, rowsExaminedMax, decided));
    }
    if (isOperatorObject(condition)) mergeRanges(ranges, path, condition);
  }
  for (const [path, byType] of ranges) {
    const decided = path === sole && byType.size === 1 && lookupIsCondition((where as { [key: string]: unknown })[path], 'range');
    for (const range of byType.values()) {
      const lookup: IndexLookup = { kind: 'range', ...range };
      options.push(indexOption(source, path, [lookup], lookupJson(lookup), rowsExaminedMax, decided));
    }
  }
  return options;
}

function lookupJson(lookup: IndexLookup): Json {
  if (lookup.kind === 'eq') return { kind: 'eq', value: lookup.value };
  const json: { [key: string]: Json } = { kind: 'range' };
  if (lookup.lower) json.lower = { value: lookup.lower.value, inclusive: lookup.lower.inclusive };
  if (lookup.upper) json.upper = { value: lookup.upper.value, inclusive: lookup.upper.inclusive };
  return json;
}

function indexOption(
  source: RowSource,
  field: string,
  lookups: IndexLookup[],
  lookup: Json,
  rowsExaminedMax: number,
  decided: boolean,
): Option {
  let sorted: RowRef[] | null = null;
  // Rows of several lookups, or of a source that does not keep them in order: gathered once, deduplicated, sorted.
  const gathered = (): RowRef[] => {
    if (sorted !== null) return sorted;
    const unique = new Map<string, RowRef>();
    for (const each of lookups) {
      for (const row of source.indexRows(field, each).rows) {
        if (unique.has(row.key)) continue;
        unique.set(row.key, row);
        if (unique.size > rowsExaminedMax) throw tooManyRows(rowsExaminedMax);
      }
    }
    sorted = sortByKey([...unique.values()]);
    return sorted;
  };
  return {
    cost: () => lookups.reduce((sum, each) => sum + source.indexEstimate(field, each), 0),
    plan: (cost) => ({ access: 'index', index: field, estimatedRows: cost, lookup }),
    rows: (afterKey) => {
      if (sorted === null && lookups.length === 1) {
        // One lookup whose rows come in key order: read them as they are (a page stops at its limit).
        const found = source.indexRows(field, lookups[0]!);
        if (found.inKeyOrder) {
          const rows = found.rows as readonly RowRef[];
          return afterKey === undefined ? rows : rowsAfter(rows, afterKey);
        }
      }
      const all = gathered();
      return afterKey === undefined ? all : rowsAfter(all, afterKey);
    },
    decided,
  };
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

// The planner: picks how a query finds its candidate rows — a primary-key lookup, a secondary-index lookup, or a
// scan — from the top-level AND of its where-clause, and explains the choice.
//
// Only conjuncts that every match must satisfy can narrow the candidates: top-level fields and the members of
// top-level $and (recursively). $or and $not never do. Usable conditions:
//   primary key  equality or $in on strings / safe integers; a key is the value's string form (7 → "7").
//   index        equality or $in on non-null scalars, or $gt/$gte/$lt/$lte on numbers or strings (merged per
//                field and type into one range). `{"f": null}` cannot use an index: it matches missing fields,
//                and documents without the field are not in the index.
// The cheapest option by estimate wins (a primary-key lookup on a tie). Every candidate is re-checked against
// the full predicate, so a plan only changes speed, never answers. History queries always scan: an index
// describes one snapshot, while history matches past versions.

import { DriftError } from '../../errors.js';
import { limits } from '../../limits.js';
import type { Json } from '../types.js';
import type { CompiledQuery } from './compile.js';
import { compareCodePoints, isPlainObject, sortByCodePoints } from '../json/index.js';
import type { IndexBound, IndexLookup, RowSource } from './source.js';
import type { Plan } from './spec.js';
import { isOperatorObject } from './where.js';

export interface Access {
  readonly plan: Plan;
  /** Candidate keys strictly after `afterKey`, each once, in code-point order. */
  keys(afterKey?: string): Iterable<string>;
}

interface Option {
  cost: number;
  plan: Plan;
  keys: (afterKey?: string) => Iterable<string>;
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
      keys: (afterKey) => source.keys(afterKey),
    };
  }
  // Any lookup beats a scan; among lookups the lowest estimate wins, primary-key lookups (listed first) on a tie.
  const options = [...primaryKeyOptions(q, source), ...indexOptions(q, source, rowsExaminedMax)];
  const best = options.reduce<Option | null>((cheapest, option) => {
    return cheapest === null || option.cost < cheapest.cost ? option : cheapest;
  }, null) ?? {
    cost: source.rowCountEstimate(),
    plan: { access: 'scan', estimatedRows: source.rowCountEstimate() },
    keys: (afterKey?: string) => source.keys(afterKey),
  };
  const plan: Plan = { ...best.plan, sort };
  if (q.kind === 'aggregate') plan.aggregate = true;
  return { plan, keys: best.keys };
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
      options.push({
        cost: keys.length,
        plan: { access: 'primaryKey', estimatedRows: keys.length, keys },
        keys: (afterKey) =>
          afterKey === undefined ? keys : keys.filter((key) => compareCodePoints(key, afterKey) > 0),
      });
    }
  }
  return options;
}

function indexOptions(q: CompiledQuery, source: RowSource, rowsExaminedMax: number): Option[] {
  const indexed = new Set(source.table.indexes);
  const ranges = new Map<string, Map<'number' | 'string', Range>>();
  const options: Option[] = [];
  for (const [path, condition] of conjuncts(q.spec.where)) {
    if (!indexed.has(path)) continue;
    for (const requirement of equalityValues(condition)) {
      // A Set drops repeated $in values (and -0 next to 0) so the estimate counts each lookup once.
      const values = [...new Set(requirement.values)];
      const list = requirement.list;
      if (!values.every((value) => value !== null && typeof value !== 'object')) continue;
      const lookups = values.map((value): IndexLookup => ({ kind: 'eq', value: value as Json }));
      const lookup: Json = list ? { kind: 'in', values: values as Json[] } : { kind: 'eq', value: values[0] as Json };
      options.push(indexOption(source, path, lookups, lookup, rowsExaminedMax));
    }
    if (isOperatorObject(condition)) mergeRanges(ranges, path, condition);
  }
  for (const [path, byType] of ranges) {
    for (const range of byType.values()) {
      const lookup: IndexLookup = { kind: 'range', ...range };
      options.push(indexOption(source, path, [lookup], lookupJson(lookup), rowsExaminedMax));
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
): Option {
  const estimate = lookups.reduce((sum, each) => sum + source.indexEstimate(field, each), 0);
  let sorted: string[] | null = null;
  const candidates = (): string[] => {
    if (sorted !== null) return sorted;
    const unique = new Set<string>();
    for (const each of lookups) {
      for (const key of source.indexKeys(field, each)) {
        unique.add(key);
        if (unique.size > rowsExaminedMax) throw tooManyRows(rowsExaminedMax);
      }
    }
    sorted = sortByCodePoints([...unique]);
    return sorted;
  };
  return {
    cost: estimate,
    plan: { access: 'index', index: field, estimatedRows: estimate, lookup },
    keys: (afterKey) => {
      const all = candidates();
      return afterKey === undefined ? all : all.filter((key) => compareCodePoints(key, afterKey) > 0);
    },
  };
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

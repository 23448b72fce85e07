// compileQuery: checks a whole query body semantically (http-api.md §5) and prepares what the planner and the
// executor need — the predicate, parsed paths, the page limit, the decoded cursor and the query's fingerprint.

import { assert } from '../../assert.js';
import { DriftError } from '../../errors.js';
import { limits } from '../../limits.js';
import type { Json, TableDef } from '../types.js';
import { decodeCursor, fingerprintOf } from './cursor.js';
import type { Cursor } from './cursor.js';
import { isPlainObject, type PathSegments } from '../json/index.js';
import { pointer, Problems } from './problems.js';
import type { QuerySpec } from './spec.js';
import { checkPath, compileWhereInto, type Predicate } from './where.js';

export interface OrderKey {
  /** The path as written; for aggregate queries, a groupBy path or an aggregate alias (a key of the answer row). */
  field: string;
  segments: PathSegments;
  descending: boolean;
}

export type AggregateOp = '$count' | '$sum' | '$avg' | '$min' | '$max';

export interface AggregateDef {
  alias: string;
  op: AggregateOp;
  /** The path aggregated; null for $count. */
  segments: PathSegments | null;
}

export interface GroupKey {
  path: string;
  segments: PathSegments;
}

export interface CompiledQuery {
  readonly spec: QuerySpec;
  readonly table: TableDef;
  /** rows: documents; history: versions over all time; aggregate: groupBy and/or aggregates. */
  readonly kind: 'rows' | 'history' | 'aggregate';
  /** The where, over a parsed document or a stored row (which reads the fields it needs out of its text). */
  readonly predicate: Predicate;
  readonly limit: number;
  /** Projected paths, or null for whole documents. */
  readonly select: PathSegments[] | null;
  readonly orderBy: OrderKey[];
  readonly groupBy: GroupKey[];
  readonly aggregates: AggregateDef[];
  /** Hash of table, where, select, orderBy, history, groupBy and aggregates (not limit: pages may vary it). */
  readonly fingerprint: string;
  /** The decoded `cursor`, already checked against this query's fingerprint. */
  readonly cursor: Cursor | null;
}

const specKeys = new Set([
  'table',
  'where',
  'select',
  'orderBy',
  'limit',
  'cursor',
  'asOf',
  'groupBy',
  'aggregates',
  'history',
]);
const aggregateOps = new Set<string>(['$count', '$sum', '$avg', '$min', '$max']);
/** Bound on select, orderBy, groupBy and aggregates entries: as many as where-clause nodes. */
const listEntriesMax = limits.queryNodesMax;

/** Validates `spec` for `table` and compiles it, or throws validation_failed with every problem in `errors`. */
export function compileQuery(spec: QuerySpec, table: TableDef): CompiledQuery {
  const problems = new Problems();
  if (!isPlainObject(spec)) {
    problems.add('', 'a query must be a JSON object');
    problems.throwIfAny();
  }
  assert(spec.table === table.name, 'compileQuery: spec.table must name the table passed');
  checkTopLevel(spec as unknown as { [key: string]: unknown }, problems);
  const predicate = compileWhereInto(spec.where, problems, '/where');
  const history = spec.history === true;
  const aggregate = present(spec.groupBy) || present(spec.aggregates);
  const select = checkSelect(spec.select, problems);
  const groupBy = checkGroupBy(spec.groupBy, problems);
  const aggregates = checkAggregates(spec.aggregates, groupBy, present(spec.groupBy), problems);
  const orderBy = checkOrderBy(spec.orderBy, problems);
  checkCombinations({ spec, aggregate, history, groupBy, aggregates, orderBy }, problems);
  const limit = checkLimit(spec.limit, problems);
  problems.throwIfAny();

  const kind = aggregate ? 'aggregate' : history ? 'history' : 'rows';
  const compiled = new Compiled({ spec, table, kind, predicate, limit, select, orderBy, groupBy, aggregates, history });
  compiled.cursor = checkCursor(spec.cursor, { fingerprint: () => compiled.fingerprint, kind, orderKeys: orderBy.length });
  return compiled;
}

/** A class, not an object literal: a literal with a getter is built by a slow path that cost a query several µs. */
class Compiled implements CompiledQuery {
  readonly spec: QuerySpec;
  readonly table: TableDef;
  readonly kind: CompiledQuery['kind'];
  readonly predicate: Predicate;
  readonly limit: number;
  readonly select: PathSegments[] | null;
  readonly orderBy: OrderKey[];
  readonly groupBy: GroupKey[];
  readonly aggregates: AggregateDef[];
  cursor: Cursor | null = null;
  private readonly history: boolean;
  private hash: string | undefined = undefined;

  constructor(parts: Omit<CompiledQuery, 'fingerprint' | 'cursor'> & { history: boolean }) {
    this.spec = parts.spec;
    this.table = parts.table;
    this.kind = parts.kind;
    this.predicate = parts.predicate;
    this.limit = parts.limit;
    this.select = parts.select;
    this.orderBy = parts.orderBy;
    this.groupBy = parts.groupBy;
    this.aggregates = parts.aggregates;
    this.history = parts.history;
  }

  // Hashing the query costs more than compiling it: done only when a cursor is read or made.
  get fingerprint(): string {
    return (this.hash ??= fingerprintOf({
      table: this.table.name,
      where: (this.spec.where ?? null) as Json,
      select: this.spec.select ?? null,
      orderBy: this.orderBy.map((key) => ({ field: key.field, dir: key.descending ? 'desc' : 'asc' })),
      history: this.history,
      groupBy: this.spec.groupBy ?? null,
      aggregates: (this.spec.aggregates ?? null) as Json,
    }));
  }
}

/** Optional members may be sent as null, which means the same as leaving them out. */
function present(value: unknown): boolean {
  return value !== undefined && value !== null;
}

function checkTopLevel(spec: { [key: string]: unknown }, problems: Problems): void {
  for (const key of Object.keys(spec)) {
    if (!specKeys.has(key))
      problems.add(pointer('', key), `is not a query field; expected one of ${[...specKeys].join(', ')}`);
  }
  const { asOf, history, cursor } = spec;
  if (present(asOf) && typeof asOf !== 'number' && typeof asOf !== 'string') {
    problems.add('/asOf', 'must be a seq number or an RFC 3339 timestamp string');
  }
  if (present(history) && typeof history !== 'boolean') problems.add('/history', 'must be true or false');
  if (present(cursor) && typeof cursor !== 'string') problems.add('/cursor', 'must be a string or null');
}

function checkList(value: unknown, problems: Problems, at: string, allowEmpty: boolean): unknown[] | null {
  if (!Array.isArray(value)) {
    problems.add(at, 'must be an array');
    return null;
  }
  if ((!allowEmpty && value.length === 0) || value.length > listEntriesMax) {
    problems.add(at, `must hold ${allowEmpty ? 0 : 1} to ${listEntriesMax} entries`);
    return null;
  }
  return value;
}

function checkSelect(select: unknown, problems: Problems): PathSegments[] | null {
  if (!present(select)) return null;
  const paths = checkList(select, problems, '/select', false);
  if (paths === null) return null;
  return paths.map((path, i) => checkPath(path, problems, pointer('/select', i)) ?? []);
}

function checkGroupBy(groupBy: unknown, problems: Problems): GroupKey[] {
  if (!present(groupBy)) return [];
  const paths = checkList(groupBy, problems, '/groupBy', false);
  if (paths === null) return [];
  const keys: GroupKey[] = [];
  paths.forEach((path, i) => {
    const segments = checkPath(path, problems, pointer('/groupBy', i));
    if (segments !== null) keys.push({ path: path as string, segments });
  });
  return keys;
}

function checkAggregates(
  aggregates: unknown,
  groupBy: GroupKey[],
  grouped: boolean,
  problems: Problems,
): AggregateDef[] {
  if (!present(aggregates)) return [];
  if (!isPlainObject(aggregates)) {
    problems.add('/aggregates', 'must be an object of alias → {"$count": true} | {"$sum"|"$avg"|"$min"|"$max": path}');
    return [];
  }
  const aliases = Object.keys(aggregates);
  if (aliases.length > listEntriesMax) problems.add('/aggregates', `must hold at most ${listEntriesMax} aliases`);
  if (aliases.length === 0 && !grouped)
    problems.add('/aggregates', 'must name at least one alias when there is no groupBy');
  const defs: AggregateDef[] = [];
  for (const alias of aliases) {
    const at = pointer('/aggregates', alias);
    if (alias.length === 0 || alias.length > limits.fieldPathLengthMax) {
      problems.add(at, `an alias must have 1 to ${limits.fieldPathLengthMax} characters`);
    } else if (groupBy.some((key) => key.path === alias)) {
      problems.add(at, `alias "${alias}" is also a groupBy path; the answer row cannot hold both`);
    }
    const def = checkAggregate(alias, aggregates[alias], problems, at);
    if (def !== null) defs.push(def);
  }
  return defs;
}

function checkAggregate(alias: string, spec: unknown, problems: Problems, at: string): AggregateDef | null {
  const entries = isPlainObject(spec) ? Object.entries(spec) : [];
  const [op, operand] = entries[0] ?? [];
  if (entries.length !== 1 || op === undefined || !aggregateOps.has(op)) {
    problems.add(at, 'must be exactly one of {"$count": true}, {"$sum"|"$avg"|"$min"|"$max": path}');
    return null;
  }
  if (op === '$count') {
    if (operand !== true) problems.add(pointer(at, op), '$count needs the value true');
    return { alias, op: '$count', segments: null };
  }
  const segments = checkPath(operand, problems, pointer(at, op));
  return segments === null ? null : { alias, op: op as AggregateOp, segments };
}

function checkOrderBy(orderBy: unknown, problems: Problems): OrderKey[] {
  if (!present(orderBy)) return [];
  const items = checkList(orderBy, problems, '/orderBy', true);
  if (items === null) return [];
  const keys: OrderKey[] = [];
  items.forEach((item, i) => {
    const at = pointer('/orderBy', i);
    if (!isPlainObject(item)) return problems.add(at, 'must be {"field": path, "dir"?: "asc"|"desc"}');
    const extra = Object.keys(item).filter((key) => key !== 'field' && key !== 'dir');
    if (extra.length > 0) problems.add(at, `unknown member ${extra.join(', ')}; expected field and dir`);
    if (item.dir !== undefined && item.dir !== 'asc' && item.dir !== 'desc') {
      problems.add(pointer(at, 'dir'), 'must be "asc" or "desc"');
    }
    const segments = checkPath(item.field, problems, pointer(at, 'field'));
    if (segments !== null) keys.push({ field: item.field as string, segments, descending: item.dir === 'desc' });
  });
  return keys;
}

interface Combination {
  spec: QuerySpec;
  aggregate: boolean;
  history: boolean;
  groupBy: GroupKey[];
  aggregates: AggregateDef[];
  orderBy: OrderKey[];
}

/** Rules that tie fields together: what history and aggregate queries accept. */
function checkCombinations(c: Combination, problems: Problems): void {
  if (c.aggregate && c.history) problems.add('/history', 'cannot be combined with groupBy or aggregates');
  if (c.history && c.orderBy.length > 0) {
    problems.add('/orderBy', 'is not supported with history: versions come ordered by key, then seq');
  }
  if (!c.aggregate) return;
  if (present(c.spec.select)) {
    problems.add('/select', 'cannot be combined with groupBy or aggregates: the answer rows are the groups');
  }
  const columns = new Set([...c.groupBy.map((key) => key.path), ...c.aggregates.map((def) => def.alias)]);
  c.orderBy.forEach((key, i) => {
    if (!columns.has(key.field)) {
      problems.add(
        pointer(pointer('/orderBy', i), 'field'),
        `"${key.field}" is neither a groupBy path nor an aggregate alias`,
      );
    }
  });
}

function checkLimit(limit: unknown, problems: Problems): number {
  if (!present(limit)) return limits.pageLimitDefault;
  if (!Number.isInteger(limit) || (limit as number) < 1 || (limit as number) > limits.pageLimitMax) {
    problems.add('/limit', `must be an integer from 1 to ${limits.pageLimitMax}`);
    return limits.pageLimitDefault;
  }
  return limit as number;
}

interface CursorExpectation {
  fingerprint: () => string;
  kind: CompiledQuery['kind'];
  orderKeys: number;
}

function checkCursor(text: unknown, expected: CursorExpectation): Cursor | null {
  if (!present(text)) return null;
  const cursor = decodeCursor(text);
  const { position } = cursor;
  const shapeFits =
    expected.kind === 'aggregate'
      ? position.kind === 'offset'
      : expected.kind === 'history'
        ? position.kind === 'version'
        : expected.orderKeys > 0
          ? position.kind === 'ordered' && position.values.length === expected.orderKeys
          : position.kind === 'key';
  if (cursor.fingerprint !== expected.fingerprint() || !shapeFits) {
    throw new DriftError(
      'validation_failed',
      'cursor belongs to a different query: keep table, where, select, orderBy, groupBy, aggregates and history unchanged while paging',
      {
        errors: [{ instancePath: '/cursor', message: 'was made by a different query' }],
      },
    );
  }
  return cursor;
}

// Aggregation: groups matching rows by `groupBy` values and computes `aggregates` per group (http-api.md §5).
//
// Choices where the spec is silent, as a SQL user would expect:
//   - A missing group field groups with null and shows as null (SQL's NULL group).
//   - $count counts rows; $sum and $avg use numbers only (other values are ignored); $min and $max ignore
//     missing and null (like SQL) and compare the rest in the total JSON order of engine/json/order.ts.
//   - Over no values: $count 0, $sum 0, $avg/$min/$max null. Without groupBy the answer is always one row.
//   - Rows come ordered by `orderBy` (groupBy paths or aliases), then by the group values ascending; without
//     orderBy by the group values. `limit` applies and a cursor pages on: it holds how many groups were
//     returned, and the groups are recomputed at the same snapshot, so they come in the same order.
//   - A sum whose magnitude overflows a double is refused (400) rather than answered as a non-JSON Infinity.

import { DriftError } from '../../errors.js';
import type { Doc, Json } from '../types.js';
import type { AggregateDef, CompiledQuery } from './compile.js';
import { encodeCursor } from './cursor.js';
import { canonicalJson, compareJson, getSegments, setOwn } from '../json/index.js';
import type { QueryPage } from './spec.js';

interface Accumulator {
  count: number;
  sum: number;
  numbers: number;
  /** Smallest / largest non-null value seen, per $min / $max alias. */
  extreme: Json | undefined;
}

interface Group {
  values: Json[];
  accumulators: Accumulator[];
}

export function aggregatePage(
  q: CompiledQuery,
  rows: Iterable<{ doc: Doc }>,
  at: { seq: number; groupsMax: number },
): QueryPage {
  const { seq, groupsMax } = at;
  const groups = new Map<string, Group>();
  if (q.groupBy.length === 0) groups.set('[]', newGroup([], q.aggregates));
  for (const { doc } of rows) {
    const values = q.groupBy.map((key) => getSegments(doc, key.segments) ?? null);
    const id = canonicalJson(values);
    let group = groups.get(id);
    if (group === undefined) {
      if (groups.size >= groupsMax) {
        throw new DriftError(
          'validation_failed',
          `query builds more than ${groupsMax} groups; narrow where or group by fewer values`,
          {
            queryGroupsMax: groupsMax,
          },
        );
      }
      group = newGroup(values, q.aggregates);
      groups.set(id, group);
    }
    q.aggregates.forEach((def, i) => accumulate(group.accumulators[i] as Accumulator, def, doc));
  }
  const answer = [...groups.values()].map((group) => groupRow(q, group));
  answer.sort((a, b) => compareRows(q, a, b));
  const offset = q.cursor?.position.kind === 'offset' ? q.cursor.position.offset : 0;
  const end = offset + q.limit;
  const nextCursor =
    end < answer.length
      ? encodeCursor({ seq, fingerprint: q.fingerprint, position: { kind: 'offset', offset: end } })
      : null;
  return { rows: answer.slice(offset, end).map((row) => row.doc), nextCursor };
}

function newGroup(values: Json[], aggregates: AggregateDef[]): Group {
  return { values, accumulators: aggregates.map(() => ({ count: 0, sum: 0, numbers: 0, extreme: undefined })) };
}

function accumulate(acc: Accumulator, def: AggregateDef, doc: Doc): void {
  acc.count++;
  if (def.segments === null) return;
  const value = getSegments(doc, def.segments);
  if (typeof value === 'number') {
    acc.sum += value;
    acc.numbers++;
  }
  if (value === undefined || value === null || (def.op !== '$min' && def.op !== '$max')) return;
  const order = acc.extreme === undefined ? 0 : compareJson(value, acc.extreme);
  if (acc.extreme === undefined || (def.op === '$min' ? order < 0 : order > 0)) acc.extreme = value;
}

function result(acc: Accumulator, def: AggregateDef): Json {
  switch (def.op) {
    case '$count':
      return acc.count;
    case '$sum':
      return finiteSum(acc.sum, def);
    case '$avg':
      return acc.numbers === 0 ? null : finiteSum(acc.sum, def) / acc.numbers;
    default:
      return acc.extreme ?? null;
  }
}

function finiteSum(sum: number, def: AggregateDef): number {
  if (Number.isFinite(sum)) return sum;
  throw new DriftError('validation_failed', `aggregate "${def.alias}" overflows a double-precision number`);
}

interface GroupRow {
  values: Json[];
  doc: Doc;
}

function groupRow(q: CompiledQuery, group: Group): GroupRow {
  const doc: Doc = {};
  q.groupBy.forEach((key, i) => setOwn(doc, key.path, group.values[i] as Json));
  q.aggregates.forEach((def, i) => setOwn(doc, def.alias, result(group.accumulators[i] as Accumulator, def)));
  return { values: group.values, doc };
}

function compareRows(q: CompiledQuery, a: GroupRow, b: GroupRow): number {
  for (const key of q.orderBy) {
    const order = compareJson(a.doc[key.field], b.doc[key.field]);
    if (order !== 0) return key.descending ? -order : order;
  }
  return compareJson(a.values, b.values);
}

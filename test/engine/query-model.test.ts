// Model tests: random documents, where-clauses, orderings, projections, indexes and page sizes; the pages the
// executor returns, concatenated, must equal the naive reference model's answer exactly.

import assert from 'node:assert/strict';
import fc from 'fast-check';
import t from 'tap';
import { compileQuery, compileWhere, executeQuery, planQuery, StoredRow } from '../../src/engine/query/index.js';
import type { QuerySpec, RowSource } from '../../src/engine/query/index.js';
import type { Doc, Json, RowOp } from '../../src/engine/types.js';
import {
  MemorySource,
  numberEvents,
  refCanonical,
  refGet,
  refMatch,
  refOrder,
  refProject,
  refQuery,
  sourceOf,
  tableDef,
} from './query-fixtures.js';
import type { RowEvent } from './query-fixtures.js';

const scalar: fc.Arbitrary<Json> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.constantFrom(0, -0, 1, 2, -1, 1.5, 2 ** 53 - 1, 2 ** 53 - 2, -(2 ** 53 - 1), 1e21, 1e-7),
  fc.constantFrom(
    '',
    'a',
    'b',
    'ab',
    'B',
    'é',
    '\u{1F600}',
    '\uFFFF',
    '\uE000',
    'a\u{1F600}',
    'a\uFFFF',
    '\uD83D',
    '7',
    '10',
  ),
);
const value: fc.Arbitrary<Json> = fc.oneof(
  { weight: 5, arbitrary: scalar },
  { weight: 1, arbitrary: fc.array(scalar, { maxLength: 3 }) },
  // Dictionaries vary key order, so deep equality must ignore it.
  { weight: 1, arbitrary: fc.dictionary(fc.constantFrom('x', 'y'), scalar, { maxKeys: 2 }) },
);
/** Field values drawn mostly from a few common ones, so conditions match often enough to fill several pages. */
const common = fc.constantFrom<Json>(0, 1, 2, 'a', 'b', true);
const fieldValue: fc.Arbitrary<Json> = fc.oneof({ weight: 3, arbitrary: common }, { weight: 2, arbitrary: value });
const body = fc.record(
  {
    a: fieldValue,
    b: fieldValue,
    c: fc.oneof(fc.record({ d: fieldValue }, { requiredKeys: [] }), fieldValue),
    tags: fc.array(scalar, { maxLength: 3 }),
  },
  { requiredKeys: [] },
);
const keyText = fc.oneof(
  fc.constantFrom('k1', 'k10', 'k2', 'k9', '7', '10', '9', '\u{1F600}', '\uFFFF', '\uE000', 'z', 'a b'),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 3 }),
);
/** A numeric-looking key is often stored as a number primary key: {"id": 7} is key "7". */
const primaryKeyOf = (key: string): Json =>
  /^(0|[1-9][0-9]{0,8})$/.test(key) && key.length % 2 === 1 ? Number(key) : key;
const docs = fc
  .uniqueArray(keyText, { minLength: 3, maxLength: 30 })
  .chain((keys) => fc.tuple(...keys.map((key) => body.map((doc): Doc => ({ id: primaryKeyOf(key), ...doc })))));

const path = fc.constantFrom('a', 'b', 'c', 'c.d', 'tags', 'missing', 'id');
const rangeOperand = fc.oneof(
  fc.boolean(),
  fc.constantFrom(-1, 0, 1, 1.5, 2 ** 53 - 2, 1e21),
  fc.constantFrom('', 'a', 'ab', 'b', '\uFFFF', '\u{1F600}', '7'),
);
const operators: fc.Arbitrary<Record<string, Json>> = fc.oneof(
  value.map((v) => ({ $eq: v })),
  value.map((v) => ({ $ne: v })),
  fc.tuple(fc.constantFrom('$gt', '$gte', '$lt', '$lte'), rangeOperand).map(([op, v]) => ({ [op]: v })),
  fc.tuple(rangeOperand, rangeOperand).map(([low, high]) => ({ $gte: low, $lt: high })),
  fc.array(value, { maxLength: 4 }).map((vs) => ({ $in: vs })),
  fc.array(value, { maxLength: 4 }).map((vs) => ({ $nin: vs })),
  fc.boolean().map((b) => ({ $exists: b })),
  fc.constantFrom('', 'a', '\uD83D', '\u{1F600}', 'ab', '1').map((p) => ({ $prefix: p })),
  value.map((v) => ({ $contains: v })),
);
const condition: fc.Arbitrary<Json> = fc.oneof(
  fieldValue,
  operators,
  operators.map((ops) => ({ $not: ops })),
);
const { where } = fc.letrec<{ where: Record<string, Json>; logical: Record<string, Json> }>((tie) => ({
  where: fc
    .tuple(fc.dictionary(path, condition, { maxKeys: 2 }), fc.oneof({ maxDepth: 2 }, fc.constant({}), tie('logical')))
    .map(([fields, logical]) => ({ ...fields, ...logical })),
  logical: fc.oneof(
    fc.array(tie('where'), { minLength: 1, maxLength: 2 }).map((ws) => ({ $and: ws })),
    fc.array(tie('where'), { minLength: 1, maxLength: 2 }).map((ws) => ({ $or: ws })),
    tie('where').map((w) => ({ $not: w })),
  ),
}));
/** A condition an index can serve (equality, $in or a range on a scalar), so index plans get exercised. */
const nonNullScalar = fc.oneof(
  common,
  scalar.filter((v) => v !== null),
);
const indexable = fc.tuple(
  fc.constantFrom('a', 'b', 'c.d'),
  fc.oneof(
    nonNullScalar,
    nonNullScalar.map((v) => ({ $eq: v })),
    fc.array(nonNullScalar, { maxLength: 5 }).map((vs) => ({ $in: vs })),
    fc.tuple(fc.constantFrom('$gt', '$gte', '$lt', '$lte'), rangeOperand).map(([op, v]) => ({ [op]: v })),
    fc.tuple(rangeOperand, rangeOperand).map(([low, high]) => ({ $gt: low, $lte: high })),
  ),
);
/** Often nothing, or a conjunct an index can serve, ANDed with a random where-clause. */
const queryWhere: fc.Arbitrary<Record<string, Json>> = fc
  .tuple(
    fc.option(indexable, { nil: undefined, freq: 2 }),
    fc.oneof({ weight: 3, arbitrary: fc.constant({}) }, { weight: 2, arbitrary: where }),
  )
  .map(([ix, w]) => (ix === undefined ? w : { $and: [{ [ix[0]]: ix[1] }, w] }));
const orderBy = fc.option(
  fc.array(
    fc.record({ field: path, dir: fc.constantFrom<'asc' | 'desc'>('asc', 'desc') }, { requiredKeys: ['field'] }),
    {
      minLength: 1,
      maxLength: 2,
    },
  ),
  { nil: undefined },
);
const select = fc.option(
  fc.uniqueArray(fc.constantFrom('id', 'a', 'c', 'c.d', 'tags', 'missing'), { minLength: 1, maxLength: 3 }),
  {
    nil: undefined,
  },
);
const indexes = fc.subarray(['a', 'b', 'c', 'c.d', 'tags']);

/** Follows nextCursor to the end; checks page sizes and that no empty trailing page is ever offered. */
function allPages(spec: QuerySpec, source: RowSource, seen?: { pages: number }): Doc[] {
  const rows: Doc[] = [];
  const limit = spec.limit ?? 100;
  let cursor: string | null = null;
  for (let pages = 1; ; pages++) {
    assert.ok(pages <= 200, 'cursors never reach the end');
    if (seen) seen.pages = pages;
    const page = executeQuery(compileQuery({ ...spec, cursor }, source.table), source);
    rows.push(...page.rows);
    if (page.nextCursor === null) {
      assert.equal(pages, Math.max(1, Math.ceil(rows.length / limit)), 'a page was offered past the last row');
      return rows;
    }
    assert.equal(page.rows.length, limit, 'a page before the last must be full');
    cursor = page.nextCursor;
  }
}

t.test('a where answers the same on a stored row, read field by field from its text, as on the parsed document', async (t) => {
  let matched = 0;
  let checked = 0;
  fc.assert(
    fc.property(docs, queryWhere, (rows, w) => {
      const predicate = compileWhere(w);
      for (const doc of rows) {
        const text = JSON.stringify(doc);
        const expected = predicate(JSON.parse(text) as Doc);
        assert.equal(predicate(new StoredRow(String(doc.id), text)), expected, `${JSON.stringify(w)} on ${text}`);
        checked++;
        if (expected) matched++;
      }
    }),
    { numRuns: 300 },
  );
  t.ok(matched > checked / 20 && matched < checked, `both outcomes come up: ${matched} of ${checked} matched`);
});

t.test('pages of a random query, concatenated, equal the reference model in order', async (t) => {
  // How often the interesting cases came up, so a generator drifting into trivial queries fails the test.
  const seen = { runs: 0, multiPage: 0, orderedMultiPage: 0 };
  fc.assert(
    fc.property(
      docs,
      queryWhere,
      orderBy,
      select,
      indexes,
      fc.boolean(),
      fc.integer({ min: 1, max: 5 }),
      (rows, w, order, sel, idx, sloppy, limit) => {
        const source = sourceOf(rows, { indexes: idx, sloppyIndex: sloppy });
        const spec: QuerySpec = { table: 'items', where: w, limit };
        if (order !== undefined) spec.orderBy = order;
        if (sel !== undefined) spec.select = sel;
        const expected = refQuery(
          rows.map((doc) => ({ key: String(doc.id), doc })),
          { where: w, orderBy: order, select: sel },
        );
        const paging = { pages: 0 };
        assert.deepStrictEqual(allPages(spec, source, paging), expected);
        seen.runs++;
        if (paging.pages < 2) return;
        seen.multiPage++;
        if (order !== undefined) seen.orderedMultiPage++;
      },
    ),
    { numRuns: 600 },
  );
  t.ok(seen.multiPage > seen.runs / 4, `multi-page answers: ${seen.multiPage} of ${seen.runs}`);
  t.ok(seen.orderedMultiPage > seen.runs / 10, `multi-page ordered answers: ${seen.orderedMultiPage}`);
});

t.test('pages read through an index, sloppy or exact, equal the reference model', async (t) => {
  const lookup = fc.oneof(
    fc.array(common, { minLength: 1, maxLength: 4 }).map((vs) => ({ $in: vs })),
    fc
      .tuple(fc.constantFrom('$gt', '$gte', '$lt', '$lte'), fc.constantFrom<Json>(0, 1, 2, 'a', 'b', ''))
      .map(([op, v]) => ({ [op]: v })),
    common,
  );
  // Rows that mostly hold the indexed fields, so lookups find enough of them to fill several pages.
  const denseDocs = fc
    .uniqueArray(keyText, { minLength: 6, maxLength: 20 })
    .chain((keys) =>
      fc.tuple(
        ...keys.map((key) =>
          fc
            .record({ a: fieldValue, c: fc.record({ d: fieldValue }) }, { requiredKeys: ['c'] })
            .map((doc): Doc => ({ id: primaryKeyOf(key), ...doc })),
        ),
      ),
    );
  let multiPage = 0;
  fc.assert(
    fc.property(
      denseDocs,
      fc.constantFrom('a', 'c.d'),
      lookup,
      orderBy,
      fc.boolean(),
      fc.integer({ min: 1, max: 3 }),
      (rows, field, condition, order, sloppy, limit) => {
        const source = sourceOf(rows, { indexes: ['a', 'c.d'], sloppyIndex: sloppy });
        const spec: QuerySpec = { table: 'items', where: { [field]: condition }, limit };
        if (order !== undefined) spec.orderBy = order;
        assert.equal(planQuery(compileQuery(spec, source.table), source).access, 'index');
        const expected = refQuery(
          rows.map((doc) => ({ key: String(doc.id), doc })),
          { where: spec.where, orderBy: order },
        );
        const paging = { pages: 0 };
        assert.deepStrictEqual(allPages(spec, source, paging), expected);
        if (paging.pages > 1) multiPage++;
      },
    ),
    { numRuns: 300 },
  );
  t.ok(multiPage > 50, `multi-page answers through an index: ${multiPage} of 300`);
});

t.test('an equality or $in on the primary key finds exactly the rows a scan finds', async () => {
  const keyCondition = fc.oneof(
    fc.constantFrom<Json>(7, '7', 10, 'k1', '\u{1F600}', 1.5, true),
    fc.constantFrom<Json>(7, '7', 10, 'k1', 9).map((v) => ({ $eq: v })),
    fc.array(fc.constantFrom<Json>(7, '7', 10, '10', 'k1', 'k9', 9), { maxLength: 4 }).map((vs) => ({ $in: vs })),
  );
  fc.assert(
    fc.property(docs, keyCondition, where, fc.integer({ min: 1, max: 3 }), (rows, idCondition, rest, limit) => {
      const source = sourceOf(rows);
      const w = { $and: [{ id: idCondition }, rest] };
      const expected = refQuery(
        rows.map((doc) => ({ key: String(doc.id), doc })),
        { where: w },
      );
      assert.deepStrictEqual(allPages({ table: 'items', where: w, limit }, source), expected);
    }),
    { numRuns: 300 },
  );
});

const historyEvents = fc.array(
  fc.tuple(
    fc.constantFrom('k1', 'k2', 'k10', '\u{1F600}', '\uFFFF'),
    fc.constantFrom<RowOp>('put', 'patch', 'delete', 'put'),
    body,
  ),
  { maxLength: 30 },
);

t.test('history pages, concatenated, equal every matching version in key then seq order', async () => {
  fc.assert(
    fc.property(historyEvents, where, select, fc.integer({ min: 1, max: 5 }), fc.nat(), (raw, w, sel, limit, cut) => {
      const events = raw.map(([key, op, doc]): RowEvent => ({
        key,
        op,
        doc: op === 'delete' ? null : { id: key, ...doc },
      }));
      const seq = events.length === 0 ? 0 : 1 + (cut % events.length);
      const source = new MemorySource({ table: tableDef(['a']), events, seq });
      const spec: QuerySpec = { table: 'items', where: w, history: true, limit };
      if (sel !== undefined) spec.select = sel;
      const expected = numberEvents(events)
        .filter((entry) => entry.seq <= seq && entry.doc !== null && refMatch(entry.doc, w))
        .sort((x, y) => (x.key === y.key ? x.seq - y.seq : refOrder(x.key, y.key)))
        .map((entry) => ({
          key: entry.key,
          seq: entry.seq,
          ts: new Date(entry.ts).toISOString(),
          op: entry.op,
          doc: refProject(entry.doc as Doc, sel),
        }));
      assert.deepStrictEqual(allPages(spec, source), expected);
    }),
    { numRuns: 300 },
  );
});

const groupings = fc.constantFrom<string[] | undefined>(undefined, ['a'], ['c.d'], ['a', 'tags'], ['missing']);

t.test('aggregate pages equal the reference grouping, sums, averages and extremes', async () => {
  fc.assert(
    fc.property(docs, where, groupings, indexes, fc.integer({ min: 1, max: 4 }), (rows, w, groupBy, idx, limit) => {
      const source = sourceOf(rows, { indexes: idx });
      const spec: QuerySpec = {
        table: 'items',
        where: w,
        limit,
        aggregates: { n: { $count: true }, s: { $sum: 'b' }, m: { $avg: 'b' }, lo: { $min: 'b' }, hi: { $max: 'c.d' } },
      };
      if (groupBy !== undefined) spec.groupBy = groupBy;
      assert.deepStrictEqual(allPages(spec, source), referenceGroups(rows, w, groupBy ?? []));
    }),
    { numRuns: 300 },
  );
});

function referenceGroups(rows: Doc[], w: unknown, groupBy: string[]): Doc[] {
  const matching = rows
    .map((doc) => ({ key: String(doc.id), doc }))
    .sort((x, y) => refOrder(x.key, y.key))
    .filter((row) => refMatch(row.doc, w));
  const groups = new Map<string, { values: Json[]; docs: Doc[] }>();
  if (groupBy.length === 0) groups.set('', { values: [], docs: [] });
  for (const { doc } of matching) {
    const values = groupBy.map((p) => refGet(doc, p) ?? null);
    const id = groupBy.length === 0 ? '' : refCanonical(values);
    if (!groups.has(id)) groups.set(id, { values, docs: [] });
    groups.get(id)!.docs.push(doc);
  }
  return [...groups.values()]
    .sort((x, y) => refOrder(x.values, y.values))
    .map(({ values, docs: members }) => {
      const numbers = members.map((doc) => refGet(doc, 'b')).filter((v): v is number => typeof v === 'number');
      const sum = numbers.reduce((total, n) => total + n, 0);
      const extremes = (p: string) => members.map((doc) => refGet(doc, p)).filter((v) => v !== undefined && v !== null);
      const row: Doc = Object.fromEntries(groupBy.map((p, i) => [p, values[i] as Json]));
      row.n = members.length;
      row.s = sum;
      row.m = numbers.length === 0 ? null : sum / numbers.length;
      row.lo =
        extremes('b').reduce<Json | undefined>(
          (best, v) => (best === undefined || refOrder(v, best) < 0 ? v : best),
          undefined,
        ) ?? null;
      row.hi =
        extremes('c.d').reduce<Json | undefined>(
          (best, v) => (best === undefined || refOrder(v, best) > 0 ? v : best),
          undefined,
        ) ?? null;
      return row;
    });
}

// Whole queries (http-api.md §5): validation of every member, plans and explain, cursors and their fingerprint,
// projection, ordering, aggregates, history and the rows-examined bound.

import t from 'tap';
import { DriftError } from '../../src/errors.js';
import { compileQuery, cursorSeq, executeQuery, planQuery } from '../../src/engine/query/index.js';
import type { QueryPage, QuerySpec, RowSource } from '../../src/engine/query/index.js';
import type { Doc } from '../../src/engine/types.js';
import { MemorySource, sourceOf, tableDef } from './query-fixtures.js';

const orders: Doc[] = [
  { id: 1, status: 'paid', amount: 250, customer: { city: 'Oslo' }, tags: ['vip'] },
  { id: 2, status: 'open', amount: 80, customer: { city: 'Rome' } },
  { id: 3, status: 'paid', amount: 120, customer: { city: 'Rome' }, tags: [] },
  { id: 7, status: 'paid', amount: 99.5, customer: { city: 'Oslo' } },
  { id: 10, status: 'void', amount: null, customer: {} },
  { id: '7a', status: 'paid', amount: '300', customer: { city: 'Paris' } },
  { id: 12, status: 'open', customer: { city: 'Oslo' } },
];

function run(source: RowSource, spec: Omit<QuerySpec, 'table'>): QueryPage {
  return executeQuery(compileQuery({ table: 'items', ...spec }, source.table), source);
}

/** Every page's rows in order, following nextCursor to the end. */
function runAll(source: RowSource, spec: Omit<QuerySpec, 'table'>): Doc[] {
  const rows: Doc[] = [];
  let cursor: string | null = null;
  do {
    const page: QueryPage = run(source, { ...spec, cursor });
    rows.push(...page.rows);
    cursor = page.nextCursor;
  } while (cursor !== null);
  return rows;
}

/** The `errors` of the validation_failed that compiling `spec` throws. */
function problems(
  spec: Record<string, unknown>,
  source: RowSource = sourceOf(orders),
): { instancePath: string; message: string }[] {
  try {
    compileQuery({ table: 'items', ...spec } as QuerySpec, source.table);
  } catch (error) {
    if (error instanceof DriftError && error.code === 'validation_failed')
      return error.fields.errors as { instancePath: string; message: string }[];
    throw error;
  }
  return [];
}

t.test(
  'the example query of the spec answers paid orders of Oslo or Rome from 100 up, by amount descending',
  async (t) => {
    const source = sourceOf(orders, { indexes: ['status', 'amount'] });
    const page = run(source, {
      where: { status: 'paid', amount: { $gte: 100 }, 'customer.city': { $in: ['Oslo', 'Rome'] } },
      select: ['id', 'amount'],
      orderBy: [{ field: 'amount', dir: 'desc' }],
    });
    t.same(page, {
      rows: [
        { id: 1, amount: 250 },
        { id: 3, amount: 120 },
      ],
      nextCursor: null,
    });
  },
);

t.test('without orderBy rows come in key code-point order, so key "10" sorts before "2"', async (t) => {
  const page = run(sourceOf(orders), { select: ['id'] });
  t.same(
    page.rows.map((row) => row.id),
    [1, 10, 12, 2, 3, 7, '7a'],
  );
});

t.test('orderBy sorts missing < null < numbers < strings and breaks ties by key, whatever the direction', async (t) => {
  const source = sourceOf(orders);
  const ascending = run(source, { orderBy: [{ field: 'amount' }], select: ['id'] }).rows.map((row) => row.id);
  t.same(ascending, [12, 10, 2, 7, 3, 1, '7a']);
  const descending = run(source, { orderBy: [{ field: 'amount', dir: 'desc' }], select: ['id'] }).rows.map(
    (row) => row.id,
  );
  t.same(descending, ['7a', 1, 3, 7, 2, 10, 12]);
  const byStatus = run(source, { orderBy: [{ field: 'status', dir: 'desc' }], select: ['id'] }).rows.map(
    (row) => row.id,
  );
  t.same(byStatus, [10, 1, 3, 7, '7a', 12, 2], 'ties inside "paid" and "open" stay in ascending key order');
});

t.test('select keeps the nesting of dotted paths and leaves out missing ones', async (t) => {
  const source = sourceOf([{ id: 'k', a: { b: 1, c: 2 }, d: 3, e: null }]);
  t.same(run(source, { select: ['a.b', 'e', 'missing', 'a.missing'] }).rows, [{ a: { b: 1 }, e: null }]);
  t.same(run(source, { select: ['a.b', 'a'] }).rows, [{ a: { b: 1, c: 2 } }], 'a whole value wins over its parts');
  t.same(run(source, { select: ['d.x'] }).rows, [{}], 'a path through a scalar is missing');
  const polluted = run(sourceOf([JSON.parse('{"id":"p","__proto__":{"x":1}}') as Doc]), { select: ['__proto__.x'] })
    .rows[0] as Doc;
  t.same(Object.getPrototypeOf(polluted), Object.prototype, 'a member named __proto__ never becomes a prototype');
  t.same(JSON.parse(JSON.stringify(polluted)), JSON.parse('{"__proto__":{"x":1}}'));
});

t.test(
  'pages hold limit rows and the last page has no cursor, also when the rows end exactly at a page end',
  async (t) => {
    const source = sourceOf(orders);
    const first = run(source, { limit: 3, where: { status: 'paid' } });
    t.equal(first.rows.length, 3);
    t.type(first.nextCursor, 'string');
    t.match(first.nextCursor, /^[A-Za-z0-9_-]+$/, 'base64url');
    const second = run(source, { limit: 3, where: { status: 'paid' }, cursor: first.nextCursor });
    t.same(
      second.rows.map((row) => row.id),
      ['7a'],
    );
    t.equal(second.nextCursor, null);
    const exact = run(source, { limit: 4, where: { status: 'paid' } });
    t.equal(exact.rows.length, 4);
    t.equal(exact.nextCursor, null, 'no cursor to an empty page');
    t.same(run(source, { where: { status: 'lost' } }), { rows: [], nextCursor: null, rowsJson: [] });
    const paid = run(source, { where: { status: 'paid' }, limit: 2 });
    t.same(paid.rowsJson, paid.rows.map((row) => JSON.stringify(row)), 'whole documents come with their stored text');
    t.equal(run(source, { select: ['id'] }).rowsJson, undefined, 'projected rows have no stored text');
    const many = sourceOf(Array.from({ length: 250 }, (_, i) => ({ id: `k${String(i).padStart(3, '0')}` })));
    t.equal(run(many, {}).rows.length, 100, 'the default limit is 100');
    t.equal(run(many, { limit: 1000 }).rows.length, 250);
  },
);

t.test('following cursors of an ordered query returns every row exactly once, across ties', async (t) => {
  const docs = Array.from({ length: 40 }, (_, i): Doc => ({
    id: `r${i}`,
    group: i % 3,
    score: i % 2 === 0 ? i % 5 : null,
  }));
  const source = sourceOf(docs);
  const spec = { orderBy: [{ field: 'group', dir: 'desc' as const }, { field: 'score' }], limit: 7 };
  const paged = runAll(source, spec);
  t.same(paged, run(source, { ...spec, limit: 1000 }).rows);
  t.equal(new Set(paged.map((row) => row.id)).size, 40);
});

t.test('a cursor keeps its snapshot, and is refused at another one or for another query', async (t) => {
  const table = tableDef();
  const events = [1, 2, 3, 4].map((n) => ({ key: `k${n}`, op: 'put' as const, doc: { id: `k${n}`, n } }));
  const atTwo = new MemorySource({ table, events, seq: 2 });
  const first = run(atTwo, { limit: 1 });
  const cursor = first.nextCursor as string;
  t.equal(cursorSeq(cursor), 2);
  t.same(run(atTwo, { limit: 5, cursor }).rows, [{ id: 'k2', n: 2 }], 'the page after reads snapshot 2 only');
  const atFour = new MemorySource({ table, events, seq: 4 });
  t.throws(() => run(atFour, { limit: 1, cursor }), { code: 'validation_failed', message: /snapshot 2, not 4/ });
  t.throws(() => run(atTwo, { limit: 1, cursor, where: { n: 2 } }), {
    code: 'validation_failed',
    message: /different query/,
  });
  t.throws(() => run(atTwo, { limit: 1, cursor, orderBy: [{ field: 'n' }] }), {
    code: 'validation_failed',
    message: /different query/,
  });
  t.throws(() => run(atTwo, { limit: 1, cursor, select: ['n'] }), {
    code: 'validation_failed',
    message: /different query/,
  });
  t.throws(() => run(atTwo, { limit: 1, cursor, history: true }), {
    code: 'validation_failed',
    message: /different query/,
  });
  t.doesNotThrow(() => run(atTwo, { limit: 7, cursor, orderBy: [] }), 'the limit may change between pages');
  const otherTable = new MemorySource({ table: { ...table, name: 'other' }, events, seq: 2 });
  t.throws(() => executeQuery(compileQuery({ table: 'other', cursor }, otherTable.table), otherTable), {
    code: 'validation_failed',
  });
});

t.test('malformed or foreign cursors are a validation_failed, never a crash', async (t) => {
  const source = sourceOf(orders);
  const forged = (body: unknown) => Buffer.from(JSON.stringify(body)).toString('base64url');
  for (const cursor of [
    '',
    'not a cursor!',
    'e30',
    forged({ v: 1, s: -1, f: 'x', p: { t: 'k', k: 'a' } }),
    forged({ v: 2 }),
    forged([1]),
    'AAAA',
  ]) {
    t.throws(() => run(source, { cursor }), { code: 'validation_failed' }, JSON.stringify(cursor));
    t.throws(() => cursorSeq(cursor), { code: 'validation_failed' });
  }
  t.same(problems({ cursor: 5 }), [{ instancePath: '/cursor', message: 'must be a string or null' }]);
});

t.test('every malformed query member is named in one validation_failed', async (t) => {
  const cases: [Record<string, unknown>, string, RegExp][] = [
    [{ limit: 0 }, '/limit', /1 to 1000/],
    [{ limit: 1001 }, '/limit', /1 to 1000/],
    [{ limit: 2.5 }, '/limit', /integer/],
    [{ limit: '10' }, '/limit', /integer/],
    [{ select: [] }, '/select', /1 to 1000 entries/],
    [{ select: 'id' }, '/select', /array/],
    [{ select: ['a.'] }, '/select/0', /empty segment/],
    [{ orderBy: [{ field: 'a', dir: 'up' }] }, '/orderBy/0/dir', /"asc" or "desc"/],
    [{ orderBy: [{ dir: 'asc' }] }, '/orderBy/0/field', /field path/],
    [{ orderBy: [{ field: 'a', nulls: 'last' }] }, '/orderBy/0', /unknown member nulls/],
    [{ orderBy: { field: 'a' } }, '/orderBy', /array/],
    [{ groupBy: 'a' }, '/groupBy', /array/],
    [{ groupBy: [] }, '/groupBy', /1 to 1000/],
    [{ aggregates: { n: { $count: 1 } } }, '/aggregates/n/$count', /true/],
    [{ aggregates: { n: { $median: 'a' } } }, '/aggregates/n', /exactly one of/],
    [{ aggregates: { n: { $sum: 'a', $avg: 'a' } } }, '/aggregates/n', /exactly one of/],
    [{ aggregates: { n: { $sum: 3 } } }, '/aggregates/n/$sum', /field path/],
    [{ aggregates: {} }, '/aggregates', /at least one alias/],
    [{ groupBy: ['a'], aggregates: { a: { $count: true } } }, '/aggregates/a', /also a groupBy path/],
    [{ groupBy: ['a'], select: ['a'] }, '/select', /cannot be combined/],
    [
      { groupBy: ['a'], orderBy: [{ field: 'b' }] },
      '/orderBy/0/field',
      /neither a groupBy path nor an aggregate alias/,
    ],
    [{ history: true, groupBy: ['a'] }, '/history', /cannot be combined/],
    [{ history: true, orderBy: [{ field: 'a' }] }, '/orderBy', /not supported with history/],
    [{ history: 'yes' }, '/history', /true or false/],
    [{ asOf: true }, '/asOf', /seq number or an RFC 3339/],
    [{ wher: { a: 1 } }, '/wher', /not a query field/],
    [{ where: { a: { $in: 1 } } }, '/where/a/$in', /array/],
  ];
  for (const [spec, pointer, pattern] of cases) {
    const found = problems(spec);
    t.ok(
      found.some((p) => p.instancePath === pointer && pattern.test(p.message)),
      `${JSON.stringify(spec)} → ${JSON.stringify(found)}`,
    );
  }
  t.same(
    problems({ limit: null, cursor: null, where: null, select: null, orderBy: null, asOf: 12 }),
    [],
    'null members mean absent',
  );
  t.equal(problems({ limit: 0, select: [], wher: 1 }).length, 3, 'all problems at once');
  t.throws(() => compileQuery('nope' as unknown as QuerySpec, tableDef()), { code: 'validation_failed' });
});

t.test(
  'an equality on the primary key reads that key only, as its string form, and re-checks the predicate',
  async (t) => {
    const source = sourceOf([
      { id: 7, n: 1 },
      { id: '8', n: 2 },
      { id: 9, n: 3 },
    ]);
    const plan = planQuery(compileQuery({ table: 'items', where: { id: 7 } }, source.table), source);
    t.same(plan, { access: 'primaryKey', estimatedRows: 1, keys: ['7'], sort: 'key' });
    source.reads = 0;
    t.same(run(source, { where: { id: 7 } }).rows, [{ id: 7, n: 1 }]);
    t.equal(source.reads, 1, 'one read, no scan');
    t.same(run(source, { where: { id: 8 } }).rows, [], 'key "8" holds the string "8", not the number 8');
    t.same(run(source, { where: { id: '8' } }).rows, [{ id: '8', n: 2 }]);
    t.same(
      run(source, { where: { id: { $in: [9, '8', 9, 'x'] } } }).rows.map((row) => row.n),
      [2, 3],
    );
    t.same(run(source, { where: { id: 7, n: 2 } }).rows, [], 'the rest of the predicate still applies');
    t.equal(
      planQuery(compileQuery({ table: 'items', where: { id: 7.5 } }, source.table), source).access,
      'scan',
      '7.5 is no key',
    );
    t.equal(
      planQuery(compileQuery({ table: 'items', where: { $or: [{ id: 7 }, { id: 9 }] } }, source.table), source).access,
      'scan',
    );
  },
);

t.test('explain picks an index for an equality, a range or $in on an indexed field, and scans otherwise', async (t) => {
  const source = sourceOf(orders, { indexes: ['status', 'amount', 'customer.city'] });
  const plan = (where: Record<string, unknown>, extra: Omit<QuerySpec, 'table'> = {}) =>
    planQuery(compileQuery({ table: 'items', where: where as QuerySpec['where'], ...extra }, source.table), source);
  t.same(plan({ status: 'paid' }), {
    access: 'index',
    index: 'status',
    estimatedRows: 4,
    lookup: { kind: 'eq', value: 'paid' },
    sort: 'key',
  });
  t.same(plan({ amount: { $gt: 100, $lte: 250, $gte: 90 } }), {
    access: 'index',
    index: 'amount',
    estimatedRows: 2,
    lookup: { kind: 'range', lower: { value: 100, inclusive: false }, upper: { value: 250, inclusive: true } },
    sort: 'key',
  });
  t.same(plan({ 'customer.city': { $in: ['Rome', 'Paris'] } }).lookup, { kind: 'in', values: ['Rome', 'Paris'] });
  t.equal(plan({ status: 'open', 'customer.city': 'Oslo' }).index, 'status', 'the cheaper estimate wins (2 < 3)');
  t.equal(
    plan({ $and: [{ 'customer.city': 'Paris' }, { status: 'paid' }] }).index,
    'customer.city',
    '$and members count',
  );
  t.equal(plan({ status: null }).access, 'scan', 'null matches missing fields, which no index holds');
  t.equal(plan({ status: { $ne: 'paid' } }).access, 'scan');
  t.equal(plan({ status: { $prefix: 'p' } }).access, 'scan');
  t.equal(plan({ status: ['paid'] }).access, 'scan', 'an array value cannot be looked up');
  t.equal(plan({ $or: [{ status: 'paid' }] }).access, 'scan');
  t.equal(plan({ $not: { status: 'paid' } }).access, 'scan');
  t.equal(plan({ tags: 'vip' }).access, 'scan', 'not an indexed field');
  t.same(plan({}), { access: 'scan', estimatedRows: 7, sort: 'key' });
  t.equal(plan({ status: 'paid' }, { orderBy: [{ field: 'amount' }] }).sort, 'memory');
  t.same(plan({ id: 3, status: 'paid' }).access, 'primaryKey');
  t.same(plan({ status: 'paid' }, { groupBy: ['status'] }).aggregate, true);
  t.same(plan({ status: 'paid' }, { history: true }), { access: 'scan', estimatedRows: 7, sort: 'key', history: true });
});

t.test('an index lookup returns the same rows as a scan, re-checking every candidate', async (t) => {
  const sloppy = sourceOf(orders, { indexes: ['status', 'amount'], sloppyIndex: true });
  const plain = sourceOf(orders);
  const wheres: QuerySpec['where'][] = [
    { status: 'paid' },
    { amount: { $gte: 99.5 } },
    { amount: { $lt: '5' } },
    { status: { $in: ['open', 'void'] } },
    { status: { $in: [] } },
  ];
  for (const where of wheres) {
    t.same(runAll(sloppy, { where, limit: 2 }), runAll(plain, { where, limit: 2 }), JSON.stringify(where));
  }
});

t.test('a query that would examine too many rows is refused with a clear message', async (t) => {
  const source = sourceOf(Array.from({ length: 50 }, (_, i) => ({ id: `k${String(i).padStart(2, '0')}`, n: i })));
  const q = compileQuery({ table: 'items', where: { n: { $gt: 1000 } } }, source.table);
  t.throws(() => executeQuery(q, source, { rowsExaminedMax: 20 }), {
    code: 'validation_failed',
    message: /more than 20 rows/,
  });
  t.equal(executeQuery(q, source, { rowsExaminedMax: 50 }).rows.length, 0);
  const early = compileQuery({ table: 'items', limit: 5 }, source.table);
  t.equal(
    executeQuery(early, source, { rowsExaminedMax: 6 }).rows.length,
    5,
    'key-order pages stop reading at limit + 1',
  );
  const indexed = sourceOf(Array.from({ length: 50 }, (_, i) => ({ id: `k${String(i).padStart(2, '0')}`, n: i, c: 'x' })), { indexes: ['c'] });
  const byIndex = compileQuery({ table: 'items', where: { c: 'x' }, limit: 5 }, indexed.table);
  t.equal(
    executeQuery(byIndex, indexed, { rowsExaminedMax: 6 }).rows.length,
    5,
    'so do pages of an equality lookup whose rows come in key order',
  );
  const byTwoValues = compileQuery({ table: 'items', where: { c: { $in: ['x', 'y'] } }, limit: 5 }, indexed.table);
  t.throws(() => executeQuery(byTwoValues, indexed, { rowsExaminedMax: 6 }), { code: 'validation_failed' }, 'several lookups gather first');
  const ordered = compileQuery({ table: 'items', limit: 5, orderBy: [{ field: 'n' }] }, source.table);
  t.throws(() => executeQuery(ordered, source, { rowsExaminedMax: 49 }), { code: 'validation_failed' });
});

t.test('aggregates group by path values and name groups by their path string', async (t) => {
  const source = sourceOf(orders);
  const page = run(source, {
    where: { status: { $ne: 'void' } },
    groupBy: ['customer.city'],
    aggregates: {
      n: { $count: true },
      total: { $sum: 'amount' },
      mean: { $avg: 'amount' },
      low: { $min: 'amount' },
      high: { $max: 'amount' },
    },
  });
  t.same(page, {
    rows: [
      { 'customer.city': 'Oslo', n: 3, total: 349.5, mean: 174.75, low: 99.5, high: 250 },
      { 'customer.city': 'Paris', n: 1, total: 0, mean: null, low: '300', high: '300' },
      { 'customer.city': 'Rome', n: 2, total: 200, mean: 100, low: 80, high: 120 },
    ],
    nextCursor: null,
  });
  const missing = run(source, {
    groupBy: ['customer.city'],
    aggregates: { n: { $count: true } },
    where: { status: 'void' },
  });
  t.same(missing.rows, [{ 'customer.city': null, n: 1 }], 'a missing group field groups as null');
});

t.test('aggregates without groupBy answer one row, also over no rows', async (t) => {
  const source = sourceOf(orders);
  const aggregates = {
    n: { $count: true },
    s: { $sum: 'amount' },
    a: { $avg: 'amount' },
    lo: { $min: 'amount' },
    hi: { $max: 'amount' },
  } as const;
  t.same(run(source, { aggregates }).rows, [{ n: 7, s: 549.5, a: 549.5 / 4, lo: 80, hi: '300' }]);
  t.same(run(source, { aggregates, where: { status: 'lost' } }), {
    rows: [{ n: 0, s: 0, a: null, lo: null, hi: null }],
    nextCursor: null,
  });
});

t.test('aggregate rows can be ordered by alias and paged with a cursor', async (t) => {
  const docs = Array.from({ length: 30 }, (_, i): Doc => ({ id: `k${String(i).padStart(2, '0')}`, g: i % 7, v: i }));
  const source = sourceOf(docs);
  const spec: Omit<QuerySpec, 'table'> = {
    groupBy: ['g'],
    aggregates: { n: { $count: true } },
    orderBy: [{ field: 'n', dir: 'desc' }],
  };
  const all = run(source, spec).rows;
  t.same(
    all.map((row) => [row.g, row.n]),
    [
      [0, 5],
      [1, 5],
      [2, 4],
      [3, 4],
      [4, 4],
      [5, 4],
      [6, 4],
    ],
  );
  t.same(runAll(source, { ...spec, limit: 3 }), all);
  const first = run(source, { ...spec, limit: 3 });
  t.throws(
    () => run(source, { groupBy: ['g'], aggregates: { n: { $count: true } }, limit: 3, cursor: first.nextCursor }),
    {
      code: 'validation_failed',
      message: /different query/,
    },
  );
  t.throws(
    () => executeQuery(compileQuery({ table: 'items', groupBy: ['v'] }, source.table), source, { groupsMax: 10 }),
    {
      code: 'validation_failed',
      message: /more than 10 groups/,
    },
  );
  t.same(
    run(source, { groupBy: ['g'], where: { g: { $lt: 2 } } }).rows,
    [{ g: 0 }, { g: 1 }],
    'groupBy alone lists distinct values',
  );
});

t.test('a sum that overflows a double is refused instead of answering Infinity', async (t) => {
  const source = sourceOf([
    { id: 'a', v: 1e308 },
    { id: 'b', v: 1e308 },
  ]);
  t.throws(() => run(source, { aggregates: { s: { $sum: 'v' } } }), {
    code: 'validation_failed',
    message: /overflows/,
  });
});

t.test(
  'history answers every matching version with key, seq, RFC 3339 ts, op and doc; deletes never match',
  async (t) => {
    const source = new MemorySource({
      table: tableDef(['status']),
      events: [
        { key: 'o1', op: 'put', doc: { id: 'o1', status: 'open' } },
        { key: 'o2', op: 'put', doc: { id: 'o2', status: 'paid' } },
        { key: 'o1', op: 'patch', doc: { id: 'o1', status: 'paid' } },
        { key: 'o1', op: 'delete', doc: null },
        { key: 'o1', op: 'put', doc: { id: 'o1', status: 'paid', again: true } },
        { key: 'o2', op: 'put', doc: { id: 'o2', status: 'refunded' } },
      ],
    });
    const page = run(source, { history: true, where: { status: 'paid' }, select: ['status'] });
    t.same(page.rows, [
      { key: 'o1', seq: 3, ts: '2023-11-14T22:13:23.007Z', op: 'patch', doc: { status: 'paid' } },
      { key: 'o1', seq: 5, ts: '2023-11-14T22:13:25.007Z', op: 'put', doc: { status: 'paid' } },
      { key: 'o2', seq: 2, ts: '2023-11-14T22:13:22.007Z', op: 'put', doc: { status: 'paid' } },
    ]);
    t.equal(
      run(source, { history: true, where: { status: { $exists: false } } }).rows.length,
      0,
      'the delete has no document',
    );
    t.same(
      runAll(source, { history: true, limit: 1 }).map((row) => [row.key, row.seq]),
      [
        ['o1', 1],
        ['o1', 3],
        ['o1', 5],
        ['o2', 2],
        ['o2', 6],
      ],
    );
    t.same(
      run(source, { history: true, where: { status: 'refunded' } }).rows.map((row) => row.seq),
      [6],
    );
  },
);

// HTTP tests of the query routes (http-api.md §5) through buildServer and a real engine in a temp data dir:
// filters, ordering, cursors, asOf, aggregates, history queries, explain, and the errors they answer.

import t, { type Test } from 'tap';
import { basicAuth, type Response } from '../helpers/server.js';
import { startApp, expectProblem } from '../helpers/app.js';


const orders = [
  { id: 1, status: 'paid', amount: 250, customer: { city: 'Oslo' }, tags: ['a', 'b'] },
  { id: 2, status: 'open', amount: 80, customer: { city: 'Rome' }, tags: ['b'] },
  { id: 3, status: 'paid', amount: 100, customer: { city: 'Rome' }, tags: [] },
  { id: 4, status: 'paid', amount: 40, customer: { city: 'Lima' } },
  { id: 5, status: 'void', amount: 250, customer: { city: 'Oslo' }, tags: ['a'] },
  { id: 10, status: 'paid', amount: 500, customer: { city: 'Oslo' }, note: null },
];

async function withOrders(t: Test, indexes: string[] = []) {
  const api = await startApp(t);
  t.equal((await api.call('POST', '/v1/tables', { body: { name: 'orders', primaryKey: 'id', indexes } })).status, 201);
  let seq = 0;
  for (const order of orders) seq = (await api.call('PUT', `/v1/tables/orders/rows/${order.id}`, { body: order })).json.seq;
  return { ...api, lastSeq: seq };
}

const ids = (res: Response): unknown[] => res.json.rows.map((row: { id: unknown }) => row.id);

t.test('POST /v1/query filters, projects and orders as in the contract\'s example', async (t) => {
  const { call } = await withOrders(t);
  const res = await call('POST', '/v1/query', {
    body: {
      table: 'orders',
      where: { status: 'paid', amount: { $gte: 100 }, 'customer.city': { $in: ['Oslo', 'Rome'] } },
      select: ['id', 'amount'],
      orderBy: [{ field: 'amount', dir: 'desc' }],
      limit: 100,
      cursor: null,
    },
  });
  t.equal(res.status, 200);
  t.same(res.json.rows, [
    { id: 10, amount: 500 },
    { id: 1, amount: 250 },
    { id: 3, amount: 100 },
  ]);
  t.equal(res.json.nextCursor, null);
  t.type(res.json.seq, 'number');
});

t.test('without orderBy rows come in key order; orderBy ties are broken by key', async (t) => {
  const { call } = await withOrders(t);
  t.same(ids(await call('POST', '/v1/query', { body: { table: 'orders' } })), [1, 10, 2, 3, 4, 5], 'code-point order of the keys');
  const byAmount = await call('POST', '/v1/query', { body: { table: 'orders', orderBy: [{ field: 'amount' }] } });
  t.same(ids(byAmount), [4, 2, 3, 1, 5, 10], '250 twice: key 1 before key 5');
});

t.test('where operators match as the contract says', async (t) => {
  const { call } = await withOrders(t);
  const cases: Array<[unknown, unknown[]]> = [
    [{ tags: { $contains: 'a' } }, [1, 5]],
    [{ tags: 'a' }, []],
    [{ tags: ['b'] }, [2]],
    [{ note: null }, [1, 10, 2, 3, 4, 5]],
    [{ tags: { $exists: false } }, [10, 4]],
    [{ status: { $ne: 'paid' } }, [2, 5]],
    [{ status: { $nin: ['paid', 'open'] } }, [5]],
    [{ 'customer.city': { $prefix: 'R' } }, [2, 3]],
    [{ $or: [{ amount: { $lt: 50 } }, { amount: { $gt: 400 } }] }, [10, 4]],
    [{ $not: { status: 'paid' } }, [2, 5]],
    [{ $and: [{ status: 'paid' }, { amount: { $lte: 100 } }] }, [3, 4]],
    [{ amount: { $gt: '100' } }, []],
  ];
  for (const [where, expected] of cases) {
    const res = await call('POST', '/v1/query', { body: { table: 'orders', where } });
    t.equal(res.status, 200, JSON.stringify(where));
    t.same(ids(res), expected, JSON.stringify(where));
  }
});

t.test('an unknown operator or a malformed query is 400 validation_failed', async (t) => {
  const { call } = await withOrders(t);
  const bad: unknown[] = [
    { table: 'orders', where: { amount: { $regex: '.*' } } },
    { table: 'orders', where: { $or: { status: 'paid' } } },
    { table: 'orders', wehre: { status: 'paid' } },
    { table: 'orders', limit: 0 },
    { table: 'orders', limit: 1001 },
    { table: 'orders', limit: '10' },
    { table: 'orders', orderBy: [{ field: 'amount', dir: 'down' }] },
    { table: 'orders', select: 'id' },
    { table: 'orders', history: 'yes' },
    { table: 'orders', aggregates: { n: { $median: 'amount' } } },
    { table: 'orders', cursor: 'garbage' },
    { table: 'orders', asOf: 'yesterday' },
    { table: 'orders', asOf: 10_000 },
    { table: '_system' },
    { where: {} },
    [],
  ];
  for (const body of bad) {
    const res = await call('POST', '/v1/query', { body });
    t.equal(res.status, 400, JSON.stringify(body));
    t.equal(res.json?.code, 'validation_failed', JSON.stringify(body));
    const explained = await call('POST', '/v1/query/explain', { body });
    t.equal(explained.status, 400, `explain ${JSON.stringify(body)}`);
  }
});

t.test('a query on an unknown table is 404 table_not_found', async (t) => {
  const { call } = await startApp(t);
  expectProblem(t, await call('POST', '/v1/query', { body: { table: 'nope' } }), 404, 'table_not_found');
  expectProblem(t, await call('POST', '/v1/query/explain', { body: { table: 'nope' } }), 404, 'table_not_found');
});

t.test('query pages follow nextCursor to the end, each row once, on the first page\'s snapshot', async (t) => {
  const { call } = await withOrders(t);
  const seen: unknown[] = [];
  let cursor: string | null = null;
  let firstSeq: number | undefined;
  do {
    const res: Response = await call('POST', '/v1/query', {
      body: { table: 'orders', where: { status: 'paid' }, orderBy: [{ field: 'amount', dir: 'desc' }], limit: 1, cursor },
    });
    t.equal(res.status, 200);
    t.ok(res.json.rows.length <= 1);
    firstSeq ??= res.json.seq;
    t.equal(res.json.seq, firstSeq);
    seen.push(...ids(res));
    cursor = res.json.nextCursor;
    // A write between pages must not show up in this listing.
    await call('PUT', `/v1/tables/orders/rows/${100 + seen.length}`, { body: { status: 'paid', amount: 1000 } });
  } while (cursor !== null);
  t.same(seen, [10, 1, 3, 4]);
});

t.test('a query asOf a seq reads the table as it was', async (t) => {
  const { call, lastSeq } = await withOrders(t);
  await call('PATCH', '/v1/tables/orders/rows/2', { body: { status: 'paid' } });
  await call('DELETE', '/v1/tables/orders/rows/1');
  const now = await call('POST', '/v1/query', { body: { table: 'orders', where: { status: 'paid' } } });
  t.same(ids(now), [10, 2, 3, 4]);
  const then = await call('POST', '/v1/query', { body: { table: 'orders', where: { status: 'paid' }, asOf: lastSeq } });
  t.same(ids(then), [1, 10, 3, 4]);
  t.equal(then.json.seq, lastSeq);
  const asText = await call('POST', '/v1/query', { body: { table: 'orders', where: { status: 'paid' }, asOf: String(lastSeq) } });
  t.same(ids(asText), [1, 10, 3, 4], 'asOf may be a decimal string');
});

t.test('aggregates with and without groupBy answer rows of group values and aliases', async (t) => {
  const { call } = await withOrders(t);
  const grouped = await call('POST', '/v1/query', {
    body: {
      table: 'orders',
      groupBy: ['customer.city'],
      aggregates: { n: { $count: true }, total: { $sum: 'amount' }, avg: { $avg: 'amount' }, top: { $max: 'amount' }, low: { $min: 'amount' } },
    },
  });
  t.equal(grouped.status, 200);
  const byCity = new Map(grouped.json.rows.map((row: Record<string, unknown>) => [row['customer.city'], row]));
  t.same(byCity.get('Oslo'), { 'customer.city': 'Oslo', n: 3, total: 1000, avg: 1000 / 3, top: 500, low: 250 });
  t.same(byCity.get('Rome'), { 'customer.city': 'Rome', n: 2, total: 180, avg: 90, top: 100, low: 80 });
  t.same(byCity.get('Lima'), { 'customer.city': 'Lima', n: 1, total: 40, avg: 40, top: 40, low: 40 });

  const overall = await call('POST', '/v1/query', { body: { table: 'orders', where: { status: 'paid' }, aggregates: { n: { $count: true } } } });
  t.same(overall.json.rows, [{ n: 4 }]);
});

t.test('history: true answers every matching version over all time with key, seq, RFC 3339 ts, op and doc', async (t) => {
  const { call } = await withOrders(t);
  const voided = await call('PATCH', '/v1/tables/orders/rows/1', { body: { status: 'void' } });
  await call('DELETE', '/v1/tables/orders/rows/3');
  const res = await call('POST', '/v1/query', { body: { table: 'orders', where: { status: 'paid' }, history: true } });
  t.equal(res.status, 200);
  t.same(
    res.json.rows.map((row: { key: string; op: string }) => [row.key, row.op]),
    [
      ['1', 'put'],
      ['10', 'put'],
      ['3', 'put'],
      ['4', 'put'],
    ],
    'order 1 was paid once, order 3 before its delete; deletes never match',
  );
  for (const row of res.json.rows) {
    t.match(row.ts, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    t.type(row.seq, 'number');
    t.equal(row.doc.status, 'paid');
  }
  const voidedVersions = await call('POST', '/v1/query', { body: { table: 'orders', where: { status: 'void' }, history: true } });
  t.same(voidedVersions.json.rows.map((row: { key: string; seq: number }) => [row.key, row.seq]).find((r: unknown[]) => r[0] === '1'), ['1', voided.json.seq]);
});

t.test('explain answers the plan: index for an equality or range on an indexed field, else scan', async (t) => {
  const { call } = await withOrders(t, ['status', 'amount']);
  const eq = await call('POST', '/v1/query/explain', { body: { table: 'orders', where: { status: 'paid' } } });
  t.equal(eq.status, 200);
  t.same(Object.keys(eq.json), ['plan']);
  t.match(eq.json.plan, { access: 'index', index: 'status' });
  t.type(eq.json.plan.estimatedRows, 'number');
  const range = await call('POST', '/v1/query/explain', { body: { table: 'orders', where: { amount: { $gt: 100 } } } });
  t.match(range.json.plan, { access: 'index', index: 'amount' });
  const scan = await call('POST', '/v1/query/explain', { body: { table: 'orders', where: { 'customer.city': 'Oslo' } } });
  t.equal(scan.json.plan.access, 'scan');
  t.equal(scan.json.plan.index, undefined);
  const byKey = await call('POST', '/v1/query/explain', { body: { table: 'orders', where: { id: 3 } } });
  t.equal(byKey.json.plan.access, 'primaryKey');
  t.same(ids(await call('POST', '/v1/query', { body: { table: 'orders', where: { id: 3 } } })), [3]);
});

t.test('queries need read permission and credentials', async (t) => {
  const { call, users } = await withOrders(t);
  await users.create({ username: 'query_reader', password: 'reader-password-1', roles: ['reader'] });
  const reader = basicAuth('query_reader', 'reader-password-1');
  t.equal((await call('POST', '/v1/query', { body: { table: 'orders' }, auth: reader })).status, 200);
  t.equal((await call('POST', '/v1/query/explain', { body: { table: 'orders' }, auth: reader })).status, 200);
  expectProblem(t, await call('POST', '/v1/query', { body: { table: 'orders' }, auth: false }), 401, 'unauthorized');
  expectProblem(t, await call('POST', '/v1/query', { body: { table: 'orders' }, auth: basicAuth('query_reader', 'wrong') }), 401, 'unauthorized');
});

t.test('a query body that is not JSON is 415 or 400, never 5xx', async (t) => {
  const { call } = await withOrders(t);
  expectProblem(t, await call('POST', '/v1/query', { body: '{"table":', headers: {} }), 400, 'bad_request');
  const text = await call('POST', '/v1/query', { body: 'table=orders', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  expectProblem(t, text, 415, 'unsupported_media_type');
});

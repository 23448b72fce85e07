// Table and index changes are not transactional in DriftDB: their write routes refuse a Transaction-Id header with
// 400 bad_request (rather than ignore it and commit at once), and the catalog reads accept it and ignore it.

import t from 'tap';
import { basicAuth } from '../helpers/server.js';
import { expectProblem, startApp } from '../helpers/app.js';

type Test = Parameters<Parameters<typeof t.test>[0]>[0];

/** A server with table `docs` (index on `age`) and one open transaction of the admin. */
async function withOpenTransaction(t: Test) {
  const api = await startApp(t);
  const created = await api.call('POST', '/v1/tables', { body: { name: 'docs', primaryKey: 'id', indexes: ['age'] } });
  t.equal(created.status, 201, created.text);
  const begun = await api.call('POST', '/v1/transactions', { body: {} });
  t.equal(begun.status, 201, begun.text);
  return { ...api, tx: begun.json.id as string };
}

/** The four table and index write routes, each with a request that would succeed without the header. */
const ddlWrites: ReadonlyArray<{ method: string; url: string; body?: unknown }> = [
  { method: 'POST', url: '/v1/tables', body: { name: 'inside', primaryKey: 'id' } },
  { method: 'POST', url: '/v1/tables/docs/indexes', body: { field: 'city' } },
  { method: 'DELETE', url: '/v1/tables/docs/indexes/age' },
  { method: 'DELETE', url: '/v1/tables/docs' },
];

t.test('the table and index write routes answer 400 bad_request to a Transaction-Id and change nothing', async (t) => {
  const { call, tx } = await withOpenTransaction(t);
  for (const write of ddlWrites) {
    const res = await call(write.method, write.url, { body: write.body, headers: { 'transaction-id': tx } });
    expectProblem(t, res, 400, 'bad_request');
    t.match(res.json?.detail, /not transactional/, `${write.method} ${write.url}: the detail says why`);
    t.match(res.json?.detail, /at once/);
  }
  expectProblem(t, await call('GET', '/v1/tables/inside'), 404, 'table_not_found');
  const docs = await call('GET', '/v1/tables/docs');
  t.equal(docs.status, 200, 'the table was not dropped');
  t.same(docs.json.indexes, ['age'], 'no index was added or dropped');
});

t.test('a garbage or unknown Transaction-Id is refused the same way, never ignored', async (t) => {
  const { call } = await withOpenTransaction(t);
  for (const id of ['garbage', '00000000-0000-4000-8000-000000000000', '']) {
    const res = await call('POST', '/v1/tables', { body: { name: 'inside', primaryKey: 'id' }, headers: { 'transaction-id': id } });
    expectProblem(t, res, 400, 'bad_request');
  }
  expectProblem(t, await call('GET', '/v1/tables/inside'), 404, 'table_not_found');
});

t.test('a refused table change leaves the transaction open: it still reads, writes and commits', async (t) => {
  const { call, tx } = await withOpenTransaction(t);
  const headers = { 'transaction-id': tx };
  expectProblem(t, await call('POST', '/v1/tables', { body: { name: 'inside', primaryKey: 'id' }, headers }), 400, 'bad_request');
  t.equal((await call('GET', `/v1/transactions/${tx}`)).json?.state, 'active');
  t.equal((await call('PUT', '/v1/tables/docs/rows/a', { body: { age: 1 }, headers })).status, 201);
  const commit = await call('POST', `/v1/transactions/${tx}/commit`);
  t.equal(commit.status, 200, commit.text);
  t.type(commit.json.seq, 'number', 'the row write committed');
});

t.test('a table created without the header survives the rollback of a transaction open at the time', async (t) => {
  const { call, tx } = await withOpenTransaction(t);
  t.equal((await call('POST', '/v1/tables', { body: { name: 'outside', primaryKey: 'id' } })).status, 201);
  t.equal((await call('POST', `/v1/transactions/${tx}/rollback`)).status, 200);
  t.equal((await call('GET', '/v1/tables/outside')).status, 200, 'table changes commit at once, outside any transaction');
});

t.test('credentials and permission are checked before the header: 401 and 403 come first', async (t) => {
  const { call, users, tx } = await withOpenTransaction(t);
  if (users.get('rita') === undefined) await users.create({ username: 'rita', password: 'rita-password', roles: ['reader'] });
  const headers = { 'transaction-id': tx };
  expectProblem(t, await call('DELETE', '/v1/tables/docs', { headers, auth: false }), 401, 'unauthorized');
  const reader = basicAuth('rita', 'rita-password');
  expectProblem(t, await call('DELETE', '/v1/tables/docs', { headers, auth: reader }), 403, 'forbidden');
  expectProblem(t, await call('POST', '/v1/tables/docs/indexes', { body: { field: 'x' }, headers, auth: reader }), 403, 'forbidden');
});

t.test('the catalog reads accept a Transaction-Id and ignore it: the catalog is not versioned', async (t) => {
  const { call, tx } = await withOpenTransaction(t);
  const list = await call('GET', '/v1/tables');
  const one = await call('GET', '/v1/tables/docs');
  for (const id of [tx, 'garbage']) {
    const headers = { 'transaction-id': id };
    const listed = await call('GET', '/v1/tables', { headers });
    t.equal(listed.status, 200, listed.text);
    t.same(listed.json, list.json, 'GET /v1/tables answers as without the header');
    const described = await call('GET', '/v1/tables/docs', { headers });
    t.equal(described.status, 200, described.text);
    t.same(described.json, one.json, 'GET /v1/tables/{table} answers as without the header');
  }
  t.equal((await call('GET', `/v1/transactions/${tx}`)).json?.state, 'active', 'the reads did not touch the transaction');
});

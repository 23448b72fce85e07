// HTTP tests of the table routes (http-api.md §3) through buildServer and a real engine in a temp data dir:
// create, list, describe and drop tables, add and drop indexes, and every error code those routes answer.

import t from 'tap';
import { basicAuth } from '../helpers/server.js';
import { startApp, expectProblem } from '../helpers/app.js';


const usersTable = { name: 'users', primaryKey: 'id' };

t.test('POST /v1/tables creates a table: 201 with the table and its Location', async (t) => {
  const { call } = await startApp(t);
  const res = await call('POST', '/v1/tables', { body: usersTable });
  t.equal(res.status, 201);
  t.match(String(res.headers['content-type']), /^application\/json/);
  t.equal(res.headers.location, '/v1/tables/users');
  t.same(Object.keys(res.json).sort(), ['createdSeq', 'indexes', 'name', 'primaryKey', 'rowCount']);
  t.match(res.json, { name: 'users', primaryKey: 'id', indexes: [], rowCount: 0 });
  t.type(res.json.createdSeq, 'number');
  t.ok(res.json.createdSeq > 0);
});

t.test('a table keeps its indexes and its JSON Schema, and the schema is enforced on writes', async (t) => {
  const { call } = await startApp(t);
  const schema = {
    type: 'object',
    properties: { age: { type: 'integer', minimum: 0 }, address: { type: 'object', properties: { city: { type: 'string' } } } },
    required: ['age'],
  };
  const res = await call('POST', '/v1/tables', {
    body: { name: 'people', primaryKey: 'id', indexes: ['age', 'address.city'], schema },
  });
  t.equal(res.status, 201);
  t.same(res.json.indexes.sort(), ['address.city', 'age']);
  t.same(res.json.schema, schema, 'the schema comes back whole, nested members included');
  t.same((await call('GET', '/v1/tables/people')).json.schema, schema);

  t.equal((await call('PUT', '/v1/tables/people/rows/a', { body: { age: 3 } })).status, 201);
  const bad = await call('PUT', '/v1/tables/people/rows/b', { body: { age: 'three' } });
  expectProblem(t, bad, 400, 'validation_failed');
  t.ok(Array.isArray(bad.json.errors) && bad.json.errors.length > 0, 'ajv-style errors are listed');
  const missing = await call('PATCH', '/v1/tables/people/rows/c', { body: { address: { city: 'Oslo' } } });
  expectProblem(t, missing, 400, 'validation_failed');
  expectProblem(t, await call('PATCH', '/v1/tables/people/rows/a', { body: { age: -1 } }), 400, 'validation_failed');
});

t.test('an invalid JSON Schema is 400 validation_failed', async (t) => {
  const { call } = await startApp(t);
  const res = await call('POST', '/v1/tables', { body: { ...usersTable, schema: { type: 'no-such-type' } } });
  expectProblem(t, res, 400, 'validation_failed');
  expectProblem(t, await call('GET', '/v1/tables/users'), 404, 'table_not_found');
});

t.test('creating a table that exists is 409 table_exists', async (t) => {
  const { call } = await startApp(t);
  await call('POST', '/v1/tables', { body: usersTable });
  expectProblem(t, await call('POST', '/v1/tables', { body: usersTable }), 409, 'table_exists');
  expectProblem(t, await call('POST', '/v1/tables', { body: { name: 'users', primaryKey: 'other' } }), 409, 'table_exists');
});

t.test('table names must match ^[A-Za-z_][A-Za-z0-9_]{0,62}$ and not start with _, else 400 validation_failed', async (t) => {
  const { call } = await startApp(t);
  const bad = ['', '1abc', 'a-b', 'a b', 'ü', 'a.b', '_users', '_', 'x'.repeat(64), 'Robert");DROP'];
  for (const name of bad) {
    const res = await call('POST', '/v1/tables', { body: { name, primaryKey: 'id' } });
    t.equal(res.status, 400, `name ${JSON.stringify(name)}`);
    t.equal(res.json?.code, 'validation_failed', `name ${JSON.stringify(name)}`);
  }
  for (const name of ['a', 'A_1', 'x'.repeat(63), 'snake_case_Name9']) {
    t.equal((await call('POST', '/v1/tables', { body: { name, primaryKey: 'id' } })).status, 201, `name ${name}`);
  }
  expectProblem(t, await call('GET', '/v1/tables/_users'), 400, 'validation_failed');
  expectProblem(t, await call('GET', `/v1/tables/${'x'.repeat(64)}`), 400, 'validation_failed');
});

t.test('a create-table body with missing, mistyped or unknown members is 400 validation_failed', async (t) => {
  const { call } = await startApp(t);
  const bodies: unknown[] = [
    { name: 'users' },
    { primaryKey: 'id' },
    { name: 'users', primaryKey: '' },
    { name: 'users', primaryKey: 5 },
    { name: 'users', primaryKey: 'id', indexes: 'age' },
    { name: 'users', primaryKey: 'id', indexes: ['a..b'] },
    { name: 'users', primaryKey: 'id', schema: 'yes' },
    { name: 'users', primaryKey: 'id', primarykey: 'id' },
    [usersTable],
    'users',
  ];
  for (const body of bodies) {
    const res = await call('POST', '/v1/tables', { body: typeof body === 'string' ? JSON.stringify(body) : body });
    t.equal(res.status, 400, JSON.stringify(body));
    t.equal(res.json?.code, 'validation_failed', JSON.stringify(body));
  }
  const listed = await call('GET', '/v1/tables');
  t.same(listed.json, { tables: [] }, 'nothing was created');
});

t.test('GET /v1/tables lists every table with its live row count', async (t) => {
  const { call } = await startApp(t);
  t.same((await call('GET', '/v1/tables')).json, { tables: [] });
  await call('POST', '/v1/tables', { body: usersTable });
  await call('POST', '/v1/tables', { body: { name: 'orders', primaryKey: 'no', indexes: ['status'] } });
  await call('PUT', '/v1/tables/users/rows/a', { body: {} });
  await call('PUT', '/v1/tables/users/rows/b', { body: {} });
  await call('PUT', '/v1/tables/users/rows/c', { body: {} });
  await call('DELETE', '/v1/tables/users/rows/c');
  const res = await call('GET', '/v1/tables');
  t.equal(res.status, 200);
  const byName = new Map(res.json.tables.map((table: { name: string }) => [table.name, table]));
  t.same([...byName.keys()].sort(), ['orders', 'users']);
  t.match(byName.get('users'), { name: 'users', primaryKey: 'id', indexes: [], rowCount: 2 });
  t.match(byName.get('orders'), { name: 'orders', primaryKey: 'no', indexes: ['status'], rowCount: 0 });
});

t.test('GET /v1/tables/{table} describes one table; an unknown one is 404 table_not_found', async (t) => {
  const { call } = await startApp(t);
  const created = await call('POST', '/v1/tables', { body: usersTable });
  await call('PUT', '/v1/tables/users/rows/a', { body: {} });
  const res = await call('GET', '/v1/tables/users');
  t.equal(res.status, 200);
  t.same(res.json, { ...created.json, rowCount: 1 });
  expectProblem(t, await call('GET', '/v1/tables/nope'), 404, 'table_not_found');
});

t.test('DELETE /v1/tables/{table} drops it (204); it is then unknown and may be created afresh', async (t) => {
  const { call } = await startApp(t);
  await call('POST', '/v1/tables', { body: usersTable });
  await call('PUT', '/v1/tables/users/rows/a', { body: { old: true } });
  const res = await call('DELETE', '/v1/tables/users');
  t.equal(res.status, 204);
  t.equal(res.text, '');
  expectProblem(t, await call('GET', '/v1/tables/users'), 404, 'table_not_found');
  expectProblem(t, await call('GET', '/v1/tables/users/rows/a'), 404, 'table_not_found');
  expectProblem(t, await call('DELETE', '/v1/tables/users'), 404, 'table_not_found');
  t.same((await call('GET', '/v1/tables')).json, { tables: [] });

  t.equal((await call('POST', '/v1/tables', { body: usersTable })).status, 201);
  t.same((await call('GET', '/v1/tables/users/rows')).json.rows, [], 'the new table starts empty');
});

t.test('dropping a table needs the admin role; creating tables and indexes needs write', async (t) => {
  const { call, users } = await startApp(t);
  await users.create({ username: 'tables_writer', password: 'writer-password-1', roles: ['writer'] });
  await users.create({ username: 'tables_reader', password: 'reader-password-1', roles: ['reader'] });
  const writer = basicAuth('tables_writer', 'writer-password-1');
  const reader = basicAuth('tables_reader', 'reader-password-1');

  expectProblem(t, await call('POST', '/v1/tables', { body: usersTable, auth: reader }), 403, 'forbidden');
  t.equal((await call('POST', '/v1/tables', { body: usersTable, auth: writer })).status, 201);
  expectProblem(t, await call('POST', '/v1/tables/users/indexes', { body: { field: 'a' }, auth: reader }), 403, 'forbidden');
  t.equal((await call('POST', '/v1/tables/users/indexes', { body: { field: 'a' }, auth: writer })).status, 201);
  expectProblem(t, await call('DELETE', '/v1/tables/users/indexes/a', { auth: reader }), 403, 'forbidden');
  t.equal((await call('DELETE', '/v1/tables/users/indexes/a', { auth: writer })).status, 204);
  t.equal((await call('GET', '/v1/tables', { auth: reader })).status, 200);
  t.equal((await call('GET', '/v1/tables/users', { auth: reader })).status, 200);

  expectProblem(t, await call('DELETE', '/v1/tables/users', { auth: writer }), 403, 'forbidden');
  expectProblem(t, await call('DELETE', '/v1/tables/users', { auth: reader }), 403, 'forbidden');
  t.equal((await call('GET', '/v1/tables/users')).status, 200, 'still there');
  t.equal((await call('DELETE', '/v1/tables/users')).status, 204, 'admin may drop it');
  expectProblem(t, await call('GET', '/v1/tables', { auth: false }), 401, 'unauthorized');
});

t.test('POST /v1/tables/{table}/indexes adds an index (201 table) built from the existing rows', async (t) => {
  const { call } = await startApp(t);
  await call('POST', '/v1/tables', { body: usersTable });
  const cities = ['Oslo', 'Rome', 'Oslo', 'Lima', 'Oslo'];
  for (const [i, city] of cities.entries()) await call('PUT', `/v1/tables/users/rows/u${i}`, { body: { address: { city } } });

  const res = await call('POST', '/v1/tables/users/indexes', { body: { field: 'address.city' } });
  t.equal(res.status, 201);
  t.same(res.json.indexes, ['address.city']);
  t.equal(res.json.rowCount, 5);

  const query = { table: 'users', where: { 'address.city': 'Oslo' } };
  const plan = await call('POST', '/v1/query/explain', { body: query });
  t.equal(plan.json.plan.access, 'index');
  t.equal(plan.json.plan.index, 'address.city');
  const found = await call('POST', '/v1/query', { body: query });
  t.same(
    found.json.rows.map((row: { id: string }) => row.id),
    ['u0', 'u2', 'u4'],
    'the index built from existing rows finds them',
  );
});

t.test('adding an index twice is 409 index_exists; to an unknown table 404; a bad field 400', async (t) => {
  const { call } = await startApp(t);
  await call('POST', '/v1/tables', { body: { ...usersTable, indexes: ['age'] } });
  expectProblem(t, await call('POST', '/v1/tables/users/indexes', { body: { field: 'age' } }), 409, 'index_exists');
  expectProblem(t, await call('POST', '/v1/tables/nope/indexes', { body: { field: 'age' } }), 404, 'table_not_found');
  for (const body of [{}, { field: '' }, { field: 'a..b' }, { field: '.a' }, { field: 7 }, { field: 'a', extra: 1 }, { field: 'x'.repeat(257) }]) {
    expectProblem(t, await call('POST', '/v1/tables/users/indexes', { body }), 400, 'validation_failed');
  }
  t.same((await call('GET', '/v1/tables/users')).json.indexes, ['age']);
});

t.test('DELETE /v1/tables/{table}/indexes/{field} drops it (204); queries then scan; a missing index is 404', async (t) => {
  const { call } = await startApp(t);
  await call('POST', '/v1/tables', { body: { ...usersTable, indexes: ['address.city', 'age'] } });
  await call('PUT', '/v1/tables/users/rows/a', { body: { age: 3, address: { city: 'Oslo' } } });
  const res = await call('DELETE', '/v1/tables/users/indexes/address.city');
  t.equal(res.status, 204);
  t.same((await call('GET', '/v1/tables/users')).json.indexes, ['age']);
  const query = { table: 'users', where: { 'address.city': 'Oslo' } };
  t.equal((await call('POST', '/v1/query/explain', { body: query })).json.plan.access, 'scan');
  t.same((await call('POST', '/v1/query', { body: query })).json.rows, [{ id: 'a', age: 3, address: { city: 'Oslo' } }]);
  expectProblem(t, await call('DELETE', '/v1/tables/users/indexes/address.city'), 404, 'not_found');
  expectProblem(t, await call('DELETE', '/v1/tables/nope/indexes/age'), 404, 'table_not_found');
});

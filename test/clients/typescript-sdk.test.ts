// The generated TypeScript SDK (clients/typescript) against the real server: every call typed by openapi.yaml, the
// answers as documented, a conflict retried by withTransaction, and an error read as problem details.

import t from 'tap';
import { createDriftClient, ProblemError, unwrap, withTransaction, type DriftClient } from '../../clients/typescript/src/index.js';
import { adminPassword, startServer } from '../helpers/server.js';

type Test = Parameters<Parameters<typeof t.test>[0]>[0];

async function client(t: Test): Promise<DriftClient> {
  const server = await startServer();
  t.teardown(() => server.stop());
  return createDriftClient({ baseUrl: server.url, username: 'admin', password: adminPassword });
}

const users = (table = 'users') => ({ params: { path: { table } } });
const row = (key: string, table = 'users') => ({ params: { path: { table, key } } });

t.test('create a table, write, patch, query, read asOf and history through the SDK', async (t) => {
  const api = await client(t);
  const table = unwrap(await api.POST('/v1/tables', { body: { name: 'users', primaryKey: 'id', indexes: ['city'] } }));
  t.match(table, { name: 'users', primaryKey: 'id', indexes: ['city'], rowCount: 0 });

  const put = unwrap(await api.PUT('/v1/tables/{table}/rows/{key}', { ...row('ada'), body: { name: 'Ada', city: 'London' } }));
  t.equal(put.key, 'ada');
  const patched = await api.PATCH('/v1/tables/{table}/rows/{key}', { ...row('ada'), body: { city: 'Paris' } });
  t.equal(patched.response.status, 200);
  t.equal(patched.response.headers.get('etag'), `"${patched.data!.seq}"`, 'the ETag is the seq');

  const now = unwrap(await api.GET('/v1/tables/{table}/rows/{key}', row('ada')));
  t.same(now, { id: 'ada', name: 'Ada', city: 'Paris' });
  const then = unwrap(await api.GET('/v1/tables/{table}/rows/{key}', { params: { path: { table: 'users', key: 'ada' }, query: { asOf: String(put.seq) } } }));
  t.same(then, { id: 'ada', name: 'Ada', city: 'London' }, 'asOf reads the past');

  const page = unwrap(await api.POST('/v1/query', { body: { table: 'users', where: { city: 'Paris' } } }));
  t.same(page.rows, [{ id: 'ada', name: 'Ada', city: 'Paris' }]);
  t.equal(page.nextCursor, null);

  const history = unwrap(await api.GET('/v1/tables/{table}/rows/{key}/history', row('ada')));
  t.same(history.versions.map((v) => [v.op, v.doc?.['city']]), [['put', 'London'], ['patch', 'Paris']]);
  const listed = unwrap(await api.GET('/v1/tables/{table}/rows', { params: { path: { table: 'users' }, query: { limit: 10 } } }));
  t.equal(listed.rows.length, 1);
});

t.test('a transaction that meets a conflict is retried by withTransaction and commits', async (t) => {
  const api = await client(t);
  unwrap(await api.POST('/v1/tables', { body: { name: 'acc', primaryKey: 'id' } }));
  unwrap(await api.PUT('/v1/tables/{table}/rows/{key}', { ...row('a', 'acc'), body: { balance: 100 } }));
  let interfered = false;
  const { result, seq, attempts } = await withTransaction(api, async (tx, attempt) => {
    const header = { 'Transaction-Id': tx };
    const read = unwrap(await api.GET('/v1/tables/{table}/rows/{key}', { params: { path: { table: 'acc', key: 'a' }, header } }));
    if (!interfered) {
      // Another client commits a change to the row this transaction read: its commit must fail and be retried.
      interfered = true;
      unwrap(await api.PUT('/v1/tables/{table}/rows/{key}', { ...row('a', 'acc'), body: { balance: 150 } }));
    }
    const balance = (read as { balance: number }).balance - 30;
    unwrap(await api.PUT('/v1/tables/{table}/rows/{key}', { params: { path: { table: 'acc', key: 'a' }, header }, body: { balance } }));
    return { balance, attempt };
  });
  t.equal(attempts, 2, 'the first attempt failed with a retryable conflict');
  t.same(result, { balance: 120, attempt: 2 }, 'the retry read the other client\'s write');
  t.type(seq, 'number');
  t.same(unwrap(await api.GET('/v1/tables/{table}/rows/{key}', row('a', 'acc'))), { id: 'a', balance: 120 });
});

t.test('an error answer is read as problem details', async (t) => {
  const api = await client(t);
  const missing = await api.GET('/v1/tables/{table}', users('nope'));
  t.equal(missing.response.status, 404);
  t.equal(missing.response.headers.get('content-type'), 'application/problem+json; charset=utf-8');
  t.match(missing.error, { status: 404, code: 'table_not_found', type: 'urn:driftdb:problem:table_not_found' });
  const thrown = await (async () => unwrap(await api.GET('/v1/tables/{table}', users('nope'))))().catch((error: unknown) => error);
  t.ok(thrown instanceof ProblemError);
  t.equal((thrown as ProblemError).problem.code, 'table_not_found');
  t.equal((thrown as ProblemError).retryable, false);
  const invalid = await api.POST('/v1/tables', { body: { name: '1bad', primaryKey: 'id' } });
  t.equal(invalid.error?.code, 'validation_failed');
  t.ok(Array.isArray(invalid.error?.errors), 'validation problems list what failed');
  const wrong = createDriftClient({ baseUrl: (await api.GET('/healthz')).response.url.replace('/healthz', ''), username: 'admin', password: 'wrong' });
  const denied = await wrong.GET('/v1/tables');
  t.equal(denied.error?.code, 'unauthorized');
  t.match(denied.response.headers.get('www-authenticate'), /^Basic/);
});

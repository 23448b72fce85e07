// Transactions at their edges, through the real server: a rollback racing a commit, history read inside a
// snapshot, history queries under serializable, and tables dropped under open transactions.

import t from 'tap';
import { metricValue, parseMetrics } from '../helpers/metrics.js';
import { makeTempDir, startServer, type Response, type TestServer } from '../helpers/server.js';

type Test = Parameters<Parameters<typeof t.test>[0]>[0];

interface Client {
  call(method: string, path: string, body?: unknown, tx?: string): Promise<Response>;
  begin(isolation: string): Promise<string>;
}

async function setup(t: Test): Promise<Client> {
  const server: TestServer = await startServer({ dataDir: `${makeTempDir()}/data`, args: ['--lock-timeout-ms', '500'] });
  t.teardown(() => server.stop());
  const call = (method: string, path: string, body?: unknown, tx?: string): Promise<Response> =>
    server.request(method, path, { ...(body === undefined ? {} : { body }), headers: tx === undefined ? {} : { 'transaction-id': tx } });
  const begin = async (isolation: string): Promise<string> => {
    const res = await call('POST', '/v1/transactions', { isolation });
    if (res.status !== 201) throw new Error(`begin: ${res.status} ${res.text}`);
    return res.json.id as string;
  };
  for (const name of ['a', 'b']) {
    const res = await call('POST', '/v1/tables', { name, primaryKey: 'id' });
    if (res.status !== 201) throw new Error(`create ${name}: ${res.status} ${res.text}`);
  }
  return { call, begin };
}

t.test('a rollback sent while the commit is in flight waits for it, and answers that the transaction ended', async (t) => {
  const c = await setup(t);
  for (let i = 0; i < 5; i++) {
    const tx = await c.begin('serializable');
    t.equal((await c.call('PUT', `/v1/tables/a/rows/k${i}`, { i }, tx)).status, 201);
    const [commit, rollback] = await Promise.all([
      c.call('POST', `/v1/transactions/${tx}/commit`),
      c.call('POST', `/v1/transactions/${tx}/rollback`),
    ]);
    t.equal(commit.status, 200, 'the commit succeeds');
    t.equal(rollback.status, 404, 'the rollback finds the transaction ended');
    t.equal(rollback.json.code, 'transaction_not_found');
    t.equal((await c.call('GET', `/v1/tables/a/rows/k${i}`)).status, 200, 'the committed row is there');
  }
});

t.test('history inside a snapshot transaction shows only the versions of its snapshot', async (t) => {
  const c = await setup(t);
  await c.call('PUT', '/v1/tables/a/rows/x', { v: 1 });
  const tx = await c.begin('repeatable_read');
  t.equal((await c.call('GET', '/v1/tables/a/rows/x/history', undefined, tx)).json.versions.length, 1);
  await c.call('PATCH', '/v1/tables/a/rows/x', { v: 2 });
  await c.call('PUT', '/v1/tables/a/rows/later', { v: 1 });
  const inside = await c.call('GET', '/v1/tables/a/rows/x/history', undefined, tx);
  t.same(inside.json.versions.map((v: { doc: unknown }) => v.doc), [{ id: 'x', v: 1 }], 'the later patch is not in it');
  t.equal((await c.call('GET', '/v1/tables/a/rows/later/history', undefined, tx)).status, 404, 'nor a key written later');
  t.equal((await c.call('GET', '/v1/tables/a/rows/x/history')).json.versions.length, 2, 'outside, both versions');
  t.equal((await c.call('POST', `/v1/transactions/${tx}/commit`)).status, 200);
});

t.test('serializable validates the history it read: a key and a history query changed after the snapshot fail the commit', async (t) => {
  const c = await setup(t);
  await c.call('PUT', '/v1/tables/a/rows/n', { amt: 1 });

  const rowReader = await c.begin('serializable');
  t.equal((await c.call('GET', '/v1/tables/a/rows/n/history', undefined, rowReader)).status, 200);
  await c.call('PATCH', '/v1/tables/a/rows/n', { amt: 2 });
  await c.call('PUT', '/v1/tables/b/rows/w1', { x: 1 }, rowReader);
  const first = await c.call('POST', `/v1/transactions/${rowReader}/commit`);
  t.equal(first.status, 409, 'the history read of n was changed');
  t.equal(first.json.code, 'serialization_failure');

  const queryReader = await c.begin('serializable');
  const before = await c.call('POST', '/v1/query', { table: 'a', where: { amt: 77 }, history: true }, queryReader);
  t.same(before.json.rows, [], 'no version has ever matched');
  await c.call('PATCH', '/v1/tables/a/rows/n', { amt: 77 });
  await c.call('PUT', '/v1/tables/b/rows/w2', { x: 1 }, queryReader);
  const second = await c.call('POST', `/v1/transactions/${queryReader}/commit`);
  t.equal(second.status, 409, 'a version matching the history query was committed after the snapshot');
  t.equal(second.json.code, 'serialization_failure');

  const unrelated = await c.begin('serializable');
  await c.call('POST', '/v1/query', { table: 'a', where: { amt: 5 }, history: true }, unrelated);
  await c.call('PATCH', '/v1/tables/a/rows/n', { amt: 78 });
  await c.call('PUT', '/v1/tables/b/rows/w3', { x: 1 }, unrelated);
  t.equal((await c.call('POST', `/v1/transactions/${unrelated}/commit`)).status, 200, 'a change that does not match passes');
});

t.test('dropping a table aborts the transactions that wrote to it and frees its rows for a table re-created under the name', async (t) => {
  const c = await setup(t);
  const writer = await c.begin('read_committed');
  t.equal((await c.call('PUT', '/v1/tables/a/rows/k', { v: 1 }, writer)).status, 201);
  t.equal((await c.call('DELETE', '/v1/tables/a')).status, 204);
  t.equal((await c.call('POST', '/v1/tables', { name: 'a', primaryKey: 'id' })).status, 201);

  const put = await c.call('PUT', '/v1/tables/a/rows/k', { v: 2 });
  t.equal(put.status, 201, 'the new table\'s row is not locked by the old transaction');
  // Counted by the server, not timed by the client: no write ever queued for a lock.
  t.equal(metricValue(parseMetrics((await c.call('GET', '/metrics')).text), 'driftdb_lock_waits_total'), 0, 'and nobody waited for a lock');
  const page = await c.call('GET', '/v1/tables/a/rows');
  t.same(page.json.rows, [{ id: 'k', v: 2 }]);

  const used = await c.call('GET', '/v1/tables/a/rows', undefined, writer);
  t.equal(used.status, 409, 'the writer was aborted');
  t.equal(used.json.code, 'transaction_aborted');
  t.equal((await c.call('POST', `/v1/transactions/${writer}/rollback`)).status, 200, 'and rolls back');
  t.equal((await c.call('POST', `/v1/transactions/${writer}/rollback`)).status, 404, 'once');
});

t.test('a serializable transaction that read from a table dropped after its snapshot cannot commit', async (t) => {
  const c = await setup(t);
  await c.call('PUT', '/v1/tables/a/rows/r', { v: 1 });
  const reader = await c.begin('serializable');
  t.equal((await c.call('GET', '/v1/tables/a/rows/r', undefined, reader)).status, 200);
  t.equal((await c.call('DELETE', '/v1/tables/a')).status, 204);
  await c.call('PUT', '/v1/tables/b/rows/w', { v: 1 }, reader);
  const commit = await c.call('POST', `/v1/transactions/${reader}/commit`);
  t.equal(commit.status, 409);
  t.equal(commit.json.code, 'serialization_failure');
  t.match(commit.json.detail, /table 'a' was dropped/);
});

t.test('a serializable transaction that only read commits even when what it read changed since; one that wrote does not', async (t) => {
  const c = await setup(t);
  await c.call('PUT', '/v1/tables/a/rows/r', { v: 1 });
  const reader = await c.begin('serializable');
  const writer = await c.begin('serializable');
  for (const tx of [reader, writer]) {
    t.equal((await c.call('GET', '/v1/tables/a/rows/r', undefined, tx)).json.v, 1);
    await c.call('POST', '/v1/query', { table: 'a', where: { v: 2 } }, tx);
  }
  await c.call('PATCH', '/v1/tables/a/rows/r', { v: 2 });
  await c.call('PUT', '/v1/tables/b/rows/w', { v: 1 }, writer);
  const readOnly = await c.call('POST', `/v1/transactions/${reader}/commit`);
  t.same([readOnly.status, readOnly.json], [200, { seq: null }], 'its snapshot is a state of the serial history');
  const wrote = await c.call('POST', `/v1/transactions/${writer}/commit`);
  t.equal(wrote.status, 409, 'the writer read a row changed after its snapshot');
  t.equal(wrote.json.code, 'serialization_failure');
});

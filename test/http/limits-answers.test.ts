// Bounded answers over HTTP: pages and query answers end early by size (pageBytesMax), a batch's results are
// bounded (batchAnswerBytesMax), a key's history route refuses what it cannot answer (historyBytesMax); and batch
// requests are closed per kind of op and refuse a Transaction-Id header.

import t from 'tap';
import { limits, MiB } from '../../src/limits.js';
import { expectProblem, withTable } from '../helpers/app.js';
import { startServer, type Response, type TestServer } from '../helpers/server.js';

/** Stored text of each large document: 3.9 MiB, so 4 fit in a 16 MiB page, 8 in a 32 MiB batch or history. */
const largeBytes = Math.floor(3.9 * MiB);

function largeDoc(id: string | number, fill: string): Record<string, unknown> {
  const bare = JSON.stringify({ id, blob: '' }).length;
  return { id, blob: fill.repeat(largeBytes - bare) };
}

async function ok(server: TestServer, method: string, path: string, body?: unknown): Promise<Response> {
  const res = await server.request(method, path, { body, timeoutMs: 30_000 });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${res.text.slice(0, 300)}`);
  return res;
}

t.test('one request over large documents is cut or refused, and the server keeps serving', async (t) => {
  t.equal(largeBytes * 4 <= limits.pageBytesMax && largeBytes * 5 > limits.pageBytesMax, true, 'sizes fit the bounds');
  const server = await startServer();
  t.teardown(() => server.kill());
  await ok(server, 'POST', '/v1/tables', { name: 'big', primaryKey: 'id' });
  // Key 7 gets nine versions (35 MiB of history); b..e one each: five live rows of 3.9 MiB.
  for (const fill of 'abcdefghi') await ok(server, 'PUT', '/v1/tables/big/rows/7', largeDoc(7, fill));
  for (const key of ['b', 'c', 'd', 'e']) await ok(server, 'PUT', `/v1/tables/big/rows/${key}`, largeDoc(key, key));

  const first = await ok(server, 'GET', '/v1/tables/big/rows?limit=1000');
  t.same(
    first.json.rows.map((row: { id: unknown }) => row.id),
    [7, 'b', 'c', 'd'],
    'the page ends at 4 rows, before the 5th would pass 16 MiB',
  );
  t.type(first.json.nextCursor, 'string');
  const rest = await ok(server, 'GET', `/v1/tables/big/rows?limit=1000&cursor=${first.json.nextCursor}`);
  t.same(
    rest.json.rows.map((row: { id: unknown }) => row.id),
    ['e'],
  );
  t.equal(rest.json.nextCursor, null);
  t.equal(rest.json.seq, first.json.seq, 'the next page reads the same snapshot');
  const query = await ok(server, 'POST', '/v1/query', { table: 'big', limit: 1000, select: ['id'] });
  t.same(
    query.json.rows,
    [{ id: 7 }, { id: 'b' }, { id: 'c' }, { id: 'd' }],
    'a query answer is cut the same way',
  );

  const gets = Array.from({ length: 1000 }, () => ({ op: 'get', table: 'big', key: '7' }));
  const batch = await server.request('POST', '/v1/batch', {
    body: { ops: [{ op: 'put', table: 'big', key: 'z', doc: { id: 'z' } }, ...gets.slice(1)] },
    timeoutMs: 30_000,
  });
  t.equal(batch.status, 400, batch.text.slice(0, 300));
  t.match(batch.json, { code: 'bad_request', opIndex: 9, detail: /batchAnswerBytesMax/ }, 'the 9th get passes 32 MiB');
  t.equal((await server.request('GET', '/v1/tables/big/rows/z')).status, 404, 'nothing of the refused batch is written');
  const eight = await ok(server, 'POST', '/v1/batch', { ops: gets.slice(0, 8) });
  t.equal(eight.json.results.length, 8, 'eight gets (31.2 MiB) stay within the bound');
  t.equal(eight.json.results[7].doc.blob.length, largeBytes - JSON.stringify({ id: 7, blob: '' }).length);
  const queries = Array.from({ length: 1000 }, () => ({ op: 'query', table: 'big', limit: 1000 }));
  const pages = await server.request('POST', '/v1/batch', { body: { ops: queries }, timeoutMs: 30_000 });
  t.match(pages.json, { code: 'bad_request', opIndex: 2 }, 'the third page of 15.6 MiB passes 32 MiB');

  const history = await server.request('GET', '/v1/tables/big/rows/7/history');
  t.equal(history.status, 400);
  t.match(history.json, { code: 'bad_request', detail: /historyBytesMax/ });
  t.equal((await ok(server, 'GET', '/v1/tables/big/rows/b/history')).json.versions.length, 1, 'a small history answers');
  // The detail names the history query that pages through the same versions: run it as given.
  const suggested = JSON.parse(/POST \/v1\/query and (\{.*\})\.$/.exec(history.json.detail)![1]!);
  t.same(suggested, { table: 'big', history: true, where: { id: 7 } }, 'the key as documents hold it: 7, not "7"');
  const seqs: number[] = [];
  let cursor: string | null = null;
  do {
    const page: Response = await ok(server, 'POST', '/v1/query', { ...suggested, limit: 1000, cursor });
    t.ok(page.json.rows.length <= 4, 'each history page is cut by size');
    seqs.push(...page.json.rows.map((row: { seq: number }) => row.seq));
    cursor = page.json.nextCursor;
  } while (cursor !== null);
  t.equal(seqs.length, 9, 'following the cursors returns all nine versions');
  t.same(seqs, [...seqs].sort((a, b) => a - b), 'oldest first, each once');

  t.equal((await server.request('GET', '/healthz', { auth: false })).status, 200, 'the server still serves');
  t.equal(server.proc.exitCode, null, 'the process is alive');
});

t.test('a batch op with a member its kind does not take is refused, and nothing runs', async (t) => {
  const api = await withTable(t);
  const refused: [unknown, string, string][] = [
    [{ op: 'put', table: 'docs', key: 'a', doc: { v: 1 }, bogus: 1 }, '/ops/1', 'bogus'],
    [{ op: 'delete', table: 'docs', key: 'a', doc: { v: 1 } }, '/ops/1', 'doc'],
    [{ op: 'get', table: 'docs', key: 'a', ifSeq: 1 }, '/ops/1', 'ifSeq'],
    [{ op: 'query', table: 'docs', key: 'a' }, '/ops/1', 'key'],
    [{ op: 'query', table: 'docs', wehre: { v: 1 } }, '/ops/1', 'wehre'],
    [{ op: 'patch', table: 'docs', key: 'a', doc: { v: 1 }, ifseq: 3 }, '/ops/1', 'ifseq'],
  ];
  for (const [op, instancePath, member] of refused) {
    const ops = [{ op: 'put', table: 'docs', key: 'w', doc: {} }, op];
    const res = await api.call('POST', '/v1/batch', { body: { ops } });
    expectProblem(t, res, 400, 'validation_failed');
    t.match(res.json.errors, [{ instancePath, params: { additionalProperty: member } }], `${member} is named`);
  }
  const missing = await api.call('POST', '/v1/batch', { body: { ops: [{ op: 'put', table: 'docs', key: 'a' }] } });
  expectProblem(t, missing, 400, 'validation_failed');
  t.match(missing.json.errors, [{ instancePath: '/ops/0', params: { missingProperty: 'doc' } }]);
  const unknown = await api.call('POST', '/v1/batch', { body: { ops: [{ op: 'upsert', table: 'docs', key: 'a' }] } });
  expectProblem(t, unknown, 400, 'validation_failed');
  t.equal((await api.call('GET', '/v1/tables/docs/rows/w')).status, 404, 'no op of a refused batch ran');

  const every = await api.call('POST', '/v1/batch', {
    body: {
      isolation: 'snapshot',
      ops: [
        { op: 'put', table: 'docs', key: 'a', doc: { v: 1 } },
        { op: 'patch', table: 'docs', key: 'a', doc: { w: 2 } },
        { op: 'put', table: 'docs', key: 'b', doc: { v: 3 } },
        { op: 'delete', table: 'docs', key: 'b' },
        { op: 'get', table: 'docs', key: 'a' },
        { op: 'query', table: 'docs', where: { v: 1 }, select: ['id', 'w'], orderBy: [{ field: 'v' }], limit: 5 },
      ],
    },
  });
  t.equal(every.status, 200, every.text);
  t.same(every.json.results[4], { op: 'get', key: 'a', seq: null, doc: { id: 'a', v: 1, w: 2 } });
  t.same(every.json.results[5].rows, [{ id: 'a', w: 2 }]);
  const conditional = await api.call('POST', '/v1/batch', {
    body: { ops: [{ op: 'delete', table: 'docs', key: 'a', ifSeq: every.json.seq }] },
  });
  t.equal(conditional.status, 200, 'ifSeq is still taken by the write ops');
});

t.test('a batch with a Transaction-Id header is refused: a batch is its own transaction', async (t) => {
  const api = await withTable(t);
  const begin = async (body: unknown): Promise<string> => (await api.call('POST', '/v1/transactions', { body })).json.id;
  const readOnly = await begin({ readOnly: true });
  const ops = [{ op: 'put', table: 'docs', key: 'a', doc: { v: 1 } }];
  for (const id of [readOnly, await begin({}), '00000000-0000-4000-8000-000000000000']) {
    const res = await api.call('POST', '/v1/batch', { body: { ops }, headers: { 'transaction-id': id } });
    expectProblem(t, res, 400, 'bad_request');
    t.match(res.json.detail, /its own transaction/);
  }
  t.equal((await api.call('GET', '/v1/tables/docs/rows/a')).status, 404, 'the batch did not commit on its own');
  const commit = await api.call('POST', `/v1/transactions/${readOnly}/commit`);
  t.same([commit.status, commit.json.seq], [200, null], 'the named transaction is untouched');
  t.equal((await api.call('POST', '/v1/batch', { body: { ops } })).status, 200, 'without the header the batch runs');
});

// HTTP tests of the row routes (http-api.md §4) through buildServer and a real engine in a temp data dir:
// every status and error code a row route can answer, conditional writes, asOf, history and pages.

import t, { type Test } from 'tap';
import { basicAuth } from '../helpers/server.js';
import { startApp, expectProblem, withTable as withTableOf } from '../helpers/app.js';


const withTable = (t: Test, def: Record<string, unknown> = { name: 'users', primaryKey: 'id' }) => withTableOf(t, def);

t.test('PUT inserts with 201 and replaces with 200, each answering {key, seq} and ETag "<seq>"', async (t) => {
  const { call } = await withTable(t);
  const first = await call('PUT', '/v1/tables/users/rows/ada', { body: { id: 'ada', name: 'Ada' } });
  t.equal(first.status, 201);
  t.same(Object.keys(first.json).sort(), ['key', 'seq']);
  t.equal(first.json.key, 'ada');
  t.type(first.json.seq, 'number');
  t.equal(first.headers.etag, `"${first.json.seq}"`);

  const second = await call('PUT', '/v1/tables/users/rows/ada', { body: { id: 'ada', name: 'Ada L.' } });
  t.equal(second.status, 200);
  t.ok(second.json.seq > first.json.seq);
  t.equal(second.headers.etag, `"${second.json.seq}"`);

  const read = await call('GET', '/v1/tables/users/rows/ada');
  t.equal(read.status, 200);
  t.same(read.json, { id: 'ada', name: 'Ada L.' }, 'the whole document was replaced');
  t.equal(read.headers.etag, `"${second.json.seq}"`);
});

t.test('PUT without the primary-key field takes it from the path; a numeric key is stored as a number', async (t) => {
  const { call } = await withTable(t);
  t.equal((await call('PUT', '/v1/tables/users/rows/bob', { body: { name: 'Bob' } })).status, 201);
  t.same((await call('GET', '/v1/tables/users/rows/bob')).json, { id: 'bob', name: 'Bob' });

  t.equal((await call('PUT', '/v1/tables/users/rows/7', { body: { id: 7 } })).status, 201);
  const seven = await call('GET', '/v1/tables/users/rows/7');
  t.same(seven.json, { id: 7 }, '{"id":7} is key 7 and keeps its number');
});

t.test('PUT whose primary-key field differs from the path key is 400', async (t) => {
  const { call } = await withTable(t);
  expectProblem(t, await call('PUT', '/v1/tables/users/rows/ada', { body: { id: 'bob' } }), 400, 'validation_failed');
  expectProblem(t, await call('PUT', '/v1/tables/users/rows/7', { body: { id: 8 } }), 400, 'validation_failed');
  expectProblem(t, await call('PUT', '/v1/tables/users/rows/7', { body: { id: 7.5 } }), 400, 'validation_failed');
  expectProblem(t, await call('GET', '/v1/tables/users/rows/ada'), 404, 'row_not_found');
});

t.test('a body that is not a JSON object is 400 on PUT and PATCH', async (t) => {
  const { call } = await withTable(t);
  for (const body of ['[]', '[{"id":"a"}]', '"text"', '42', 'null', 'true']) {
    for (const method of ['PUT', 'PATCH']) {
      const res = await call(method, '/v1/tables/users/rows/a', { body });
      t.equal(res.status, 400, `${method} ${body}`);
      t.equal(res.json?.code, 'validation_failed', `${method} ${body}`);
    }
  }
  const noBody = await call('PUT', '/v1/tables/users/rows/a', { headers: { 'content-type': 'application/json' } });
  t.equal(noBody.status, 400, 'an empty body is refused too');
  expectProblem(t, await call('PUT', '/v1/tables/users/rows/a', { body: '{"id":' }), 400, 'bad_request');
  expectProblem(t, await call('GET', '/v1/tables/users/rows/a'), 404, 'row_not_found');
});

t.test('writing to or reading from an unknown table is 404 table_not_found', async (t) => {
  const { call } = await startApp(t);
  expectProblem(t, await call('PUT', '/v1/tables/nope/rows/a', { body: {} }), 404, 'table_not_found');
  expectProblem(t, await call('PATCH', '/v1/tables/nope/rows/a', { body: {} }), 404, 'table_not_found');
  expectProblem(t, await call('DELETE', '/v1/tables/nope/rows/a'), 404, 'table_not_found');
  expectProblem(t, await call('GET', '/v1/tables/nope/rows/a'), 404, 'table_not_found');
  expectProblem(t, await call('GET', '/v1/tables/nope/rows/a/history'), 404, 'table_not_found');
  expectProblem(t, await call('GET', '/v1/tables/nope/rows'), 404, 'table_not_found');
});

t.test('a table name that cannot exist is 400 validation_failed on row routes', async (t) => {
  const { call } = await startApp(t);
  expectProblem(t, await call('GET', '/v1/tables/_system/rows'), 400, 'validation_failed');
  expectProblem(t, await call('PUT', '/v1/tables/bad-name/rows/a', { body: {} }), 400, 'validation_failed');
});

t.test('PATCH merges (RFC 7396): 201 when it creates the row, 200 when it changes it', async (t) => {
  const { call } = await withTable(t);
  const created = await call('PATCH', '/v1/tables/users/rows/ada', { body: { name: 'Ada', address: { city: 'London', zip: 'N1' } } });
  t.equal(created.status, 201);
  t.equal(created.headers.etag, `"${created.json.seq}"`);
  t.same((await call('GET', '/v1/tables/users/rows/ada')).json, { id: 'ada', name: 'Ada', address: { city: 'London', zip: 'N1' } });

  const changed = await call('PATCH', '/v1/tables/users/rows/ada', { body: { address: { city: 'Oslo', zip: null }, tags: ['x'] } });
  t.equal(changed.status, 200);
  t.ok(changed.json.seq > created.json.seq);
  t.same((await call('GET', '/v1/tables/users/rows/ada')).json, {
    id: 'ada',
    name: 'Ada',
    address: { city: 'Oslo' },
    tags: ['x'],
  });
});

t.test('PATCH may not change the primary key (400) but may repeat it', async (t) => {
  const { call } = await withTable(t);
  await call('PUT', '/v1/tables/users/rows/ada', { body: { name: 'Ada' } });
  expectProblem(t, await call('PATCH', '/v1/tables/users/rows/ada', { body: { id: 'bob' } }), 400, 'validation_failed');
  expectProblem(t, await call('PATCH', '/v1/tables/users/rows/ada', { body: { id: null } }), 400, 'validation_failed');
  t.equal((await call('PATCH', '/v1/tables/users/rows/ada', { body: { id: 'ada', age: 36 } })).status, 200);
  t.same((await call('GET', '/v1/tables/users/rows/ada')).json, { id: 'ada', name: 'Ada', age: 36 });
});

t.test('PATCH accepts the merge-patch media type of RFC 7396', async (t) => {
  const { call } = await withTable(t);
  const res = await call('PATCH', '/v1/tables/users/rows/ada', {
    body: { name: 'Ada' },
    headers: { 'content-type': 'application/merge-patch+json' },
  });
  t.equal(res.status, 201);
});

t.test('DELETE soft-deletes: 200 {key, seq}, then reads 404, history keeps it, a second DELETE is 404', async (t) => {
  const { call } = await withTable(t);
  const put = await call('PUT', '/v1/tables/users/rows/ada', { body: { name: 'Ada' } });
  const del = await call('DELETE', '/v1/tables/users/rows/ada');
  t.equal(del.status, 200);
  t.same(del.json, { key: 'ada', seq: put.json.seq + 1 });
  t.equal(del.headers.etag, `"${del.json.seq}"`);
  expectProblem(t, await call('GET', '/v1/tables/users/rows/ada'), 404, 'row_not_found');
  expectProblem(t, await call('DELETE', '/v1/tables/users/rows/ada'), 404, 'row_not_found');
  expectProblem(t, await call('DELETE', '/v1/tables/users/rows/never'), 404, 'row_not_found');

  const history = await call('GET', '/v1/tables/users/rows/ada/history');
  t.equal(history.status, 200, 'a deleted key still has a history');
  t.same(
    history.json.versions.map((v: { op: string; doc: unknown }) => [v.op, v.doc]),
    [
      ['put', { id: 'ada', name: 'Ada' }],
      ['delete', null],
    ],
  );
  const page = await call('GET', '/v1/tables/users/rows');
  t.same(page.json.rows, [], 'gone from pages too');
});

t.test('If-Match "<seq>" writes only over that version; otherwise 412 with currentSeq', async (t) => {
  const { call } = await withTable(t);
  const v1 = await call('PUT', '/v1/tables/users/rows/ada', { body: { n: 1 } });
  const v2 = await call('PUT', '/v1/tables/users/rows/ada', { body: { n: 2 }, headers: { 'if-match': `"${v1.json.seq}"` } });
  t.equal(v2.status, 200);

  const stale = await call('PUT', '/v1/tables/users/rows/ada', { body: { n: 3 }, headers: { 'if-match': `"${v1.json.seq}"` } });
  expectProblem(t, stale, 412, 'precondition_failed');
  t.equal(stale.json.currentSeq, v2.json.seq);
  const stalePatch = await call('PATCH', '/v1/tables/users/rows/ada', { body: { n: 3 }, headers: { 'if-match': `"${v1.json.seq}"` } });
  expectProblem(t, stalePatch, 412, 'precondition_failed');
  t.equal(stalePatch.json.currentSeq, v2.json.seq);
  const staleDelete = await call('DELETE', '/v1/tables/users/rows/ada', { headers: { 'if-match': `"${v1.json.seq}"` } });
  expectProblem(t, staleDelete, 412, 'precondition_failed');
  t.same((await call('GET', '/v1/tables/users/rows/ada')).json, { id: 'ada', n: 2 }, 'no failed write changed the row');

  const patched = await call('PATCH', '/v1/tables/users/rows/ada', { body: { n: 4 }, headers: { 'if-match': `"${v2.json.seq}"` } });
  t.equal(patched.status, 200);
  const deleted = await call('DELETE', '/v1/tables/users/rows/ada', { headers: { 'if-match': `"${patched.json.seq}"` } });
  t.equal(deleted.status, 200);

  const afterDelete = await call('PUT', '/v1/tables/users/rows/ada', { body: {}, headers: { 'if-match': `"${v2.json.seq}"` } });
  expectProblem(t, afterDelete, 412, 'precondition_failed');
  t.equal(afterDelete.json.currentSeq, deleted.json.seq, "a deleted row's currentSeq is its delete");
});

t.test('If-Match on a key never written is 412 with currentSeq null; If-Match * needs an existing row', async (t) => {
  const { call } = await withTable(t);
  const never = await call('PUT', '/v1/tables/users/rows/ghost', { body: {}, headers: { 'if-match': '"1"' } });
  expectProblem(t, never, 412, 'precondition_failed');
  t.equal(never.json.currentSeq, null);
  t.ok('currentSeq' in never.json, 'currentSeq is present, as null');

  const star = await call('PUT', '/v1/tables/users/rows/ghost', { body: {}, headers: { 'if-match': '*' } });
  expectProblem(t, star, 412, 'precondition_failed');
  t.equal(star.json.currentSeq, null);

  const put = await call('PUT', '/v1/tables/users/rows/ghost', { body: {} });
  t.equal((await call('PUT', '/v1/tables/users/rows/ghost', { body: { a: 1 }, headers: { 'if-match': '*' } })).status, 200);
  t.ok(put.json.seq > 0);
});

t.test('If-None-Match * writes only a row that does not exist', async (t) => {
  const { call } = await withTable(t);
  const first = await call('PUT', '/v1/tables/users/rows/ada', { body: { n: 1 }, headers: { 'if-none-match': '*' } });
  t.equal(first.status, 201);
  const again = await call('PUT', '/v1/tables/users/rows/ada', { body: { n: 2 }, headers: { 'if-none-match': '*' } });
  expectProblem(t, again, 412, 'precondition_failed');
  t.equal(again.json.currentSeq, first.json.seq);
  const patch = await call('PATCH', '/v1/tables/users/rows/ada', { body: { n: 2 }, headers: { 'if-none-match': '*' } });
  expectProblem(t, patch, 412, 'precondition_failed');
  t.same((await call('GET', '/v1/tables/users/rows/ada')).json, { id: 'ada', n: 1 });

  await call('DELETE', '/v1/tables/users/rows/ada');
  const reinsert = await call('PUT', '/v1/tables/users/rows/ada', { body: { n: 3 }, headers: { 'if-none-match': '*' } });
  t.equal(reinsert.status, 201, 'a deleted row does not exist');
});

t.test('a malformed If-Match or an If-None-Match other than * on a write is 400 bad_request', async (t) => {
  const { call } = await withTable(t);
  await call('PUT', '/v1/tables/users/rows/ada', { body: {} });
  for (const value of ['1', 'W/"1"', '"abc"', '"1", "2"', '""', '"-1"', '"99999999999999999"', '"01"', '"00"']) {
    expectProblem(t, await call('PUT', '/v1/tables/users/rows/ada', { body: {}, headers: { 'if-match': value } }), 400, 'bad_request');
    expectProblem(t, await call('DELETE', '/v1/tables/users/rows/ada', { headers: { 'if-match': value } }), 400, 'bad_request');
  }
  expectProblem(t, await call('PUT', '/v1/tables/users/rows/ada', { body: {}, headers: { 'if-none-match': '"1"' } }), 400, 'bad_request');
  t.equal((await call('GET', '/v1/tables/users/rows/ada')).status, 200, 'the row is still there');
});

t.test('GET with If-None-Match of the current ETag answers 304 Not Modified', async (t) => {
  const { call } = await withTable(t);
  const put = await call('PUT', '/v1/tables/users/rows/ada', { body: {} });
  const etag = `"${put.json.seq}"`;
  const same = await call('GET', '/v1/tables/users/rows/ada', { headers: { 'if-none-match': etag } });
  t.equal(same.status, 304);
  t.equal(same.text, '');
  t.equal(same.headers.etag, etag);
  const other = await call('GET', '/v1/tables/users/rows/ada', { headers: { 'if-none-match': `"${put.json.seq + 100}"` } });
  t.equal(other.status, 200);
});

t.test('GET ?asOf reads a past version by seq and by timestamp, with that version\'s ETag', async (t) => {
  const { call } = await withTable(t);
  const v1 = await call('PUT', '/v1/tables/users/rows/ada', { body: { n: 1 } });
  const v2 = await call('PUT', '/v1/tables/users/rows/ada', { body: { n: 2 } });
  const bySeq = await call('GET', `/v1/tables/users/rows/ada?asOf=${v1.json.seq}`);
  t.equal(bySeq.status, 200);
  t.same(bySeq.json, { id: 'ada', n: 1 });
  t.equal(bySeq.headers.etag, `"${v1.json.seq}"`);
  t.same((await call('GET', `/v1/tables/users/rows/ada?asOf=${v2.json.seq}`)).json, { id: 'ada', n: 2 });

  const history = (await call('GET', '/v1/tables/users/rows/ada/history')).json;
  const ts1 = history.versions[0].ts as string;
  const byTime = await call('GET', `/v1/tables/users/rows/ada?asOf=${encodeURIComponent(ts1)}`);
  t.ok(byTime.json.n === 1 || history.versions[1].ts === ts1, 'asOf equal to a ts includes that version');
  const before = new Date(Date.parse(ts1) - 60_000).toISOString();
  expectProblem(t, await call('GET', `/v1/tables/users/rows/ada?asOf=${before}`), 404, 'row_not_found');
  const after = new Date(Date.now() + 3_600_000).toISOString();
  t.same((await call('GET', `/v1/tables/users/rows/ada?asOf=${after}`)).json, { id: 'ada', n: 2 }, 'the future reads the newest');
  expectProblem(t, await call('GET', '/v1/tables/users/rows/ada?asOf=0'), 404, 'row_not_found');
});

t.test('a malformed asOf or one beyond the newest seq is 400 validation_failed', async (t) => {
  const { call } = await withTable(t);
  const put = await call('PUT', '/v1/tables/users/rows/ada', { body: {} });
  for (const asOf of ['abc', '-1', '1.5', '2026-13-45T00:00:00Z', 'yesterday', String(put.json.seq + 1), '']) {
    const res = await call('GET', `/v1/tables/users/rows/ada?asOf=${encodeURIComponent(asOf)}`);
    expectProblem(t, res, 400, 'validation_failed');
    const page = await call('GET', `/v1/tables/users/rows?asOf=${encodeURIComponent(asOf)}`);
    expectProblem(t, page, 400, 'validation_failed');
  }
});

t.test('history lists every event oldest first with RFC 3339 ts; a key never written is 404', async (t) => {
  const { call } = await withTable(t);
  const a = await call('PUT', '/v1/tables/users/rows/ada', { body: { n: 1 } });
  const b = await call('PATCH', '/v1/tables/users/rows/ada', { body: { m: 2 } });
  const c = await call('DELETE', '/v1/tables/users/rows/ada');
  const d = await call('PUT', '/v1/tables/users/rows/ada', { body: { n: 3 } });
  const res = await call('GET', '/v1/tables/users/rows/ada/history');
  t.equal(res.status, 200);
  t.equal(res.json.key, 'ada');
  t.same(
    res.json.versions.map((v: { seq: number; op: string; doc: unknown }) => [v.seq, v.op, v.doc]),
    [
      [a.json.seq, 'put', { id: 'ada', n: 1 }],
      [b.json.seq, 'patch', { id: 'ada', n: 1, m: 2 }],
      [c.json.seq, 'delete', null],
      [d.json.seq, 'put', { id: 'ada', n: 3 }],
    ],
  );
  for (const version of res.json.versions) {
    t.match(version.ts, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    t.ok(Math.abs(Date.parse(version.ts) - Date.now()) < 60_000, 'ts is the commit time');
  }
  expectProblem(t, await call('GET', '/v1/tables/users/rows/never/history'), 404, 'row_not_found');
  // The answer is written from the stored texts: it must be the very bytes JSON.stringify writes for it.
  t.equal(res.text, JSON.stringify(res.json), 'the answer is JSON.stringify of its value, members in order');
  t.same(Object.keys(res.json.versions[0]), ['seq', 'ts', 'op', 'doc']);
});

t.test('a history answer carries documents as stored: unicode, escapes and long histories', async (t) => {
  const { call } = await withTable(t);
  const docs = [{ s: 'é 😀 "quoted" \\ \n \u0000 \u2028' }, { deep: { a: [1, 2.5, -0.001, 1e21, true, null] } }, { s: '\ud800 a lone surrogate' }];
  for (let i = 0; i < 300; i++) await call('PUT', '/v1/tables/users/rows/k%22%C3%A9', { body: docs[i % docs.length] });
  const res = await call('GET', '/v1/tables/users/rows/k%22%C3%A9/history');
  t.equal(res.status, 200);
  t.equal(res.json.key, 'k"é');
  t.equal(res.json.versions.length, 300);
  t.same(
    res.json.versions.map((v: { doc: Record<string, unknown> }) => {
      const { id, ...rest } = v.doc;
      t.equal(id, 'k"é');
      return rest;
    }),
    Array.from({ length: 300 }, (_, i) => JSON.parse(JSON.stringify(docs[i % docs.length]))),
  );
  t.equal(res.text, JSON.stringify(res.json), 'the very bytes JSON.stringify writes');
});

t.test('pages come in code-point key order, default 100 rows, following nextCursor to the end', async (t) => {
  const { call } = await withTable(t);
  for (let i = 0; i < 150; i++) await call('PUT', `/v1/tables/users/rows/${i}`, { body: { i } });
  const first = await call('GET', '/v1/tables/users/rows');
  t.equal(first.status, 200);
  t.equal(first.json.rows.length, 100, 'limit defaults to 100');
  t.type(first.json.nextCursor, 'string');
  t.type(first.json.seq, 'number');
  const second = await call('GET', `/v1/tables/users/rows?cursor=${encodeURIComponent(first.json.nextCursor)}`);
  t.equal(second.json.rows.length, 50);
  t.equal(second.json.nextCursor, null);
  t.equal(second.json.seq, first.json.seq, 'every page reads the first page\'s snapshot');
  const keys = [...first.json.rows, ...second.json.rows].map((row: { id: number }) => String(row.id));
  t.same(keys, [...keys].sort(), 'code-point order of the key strings');
  t.equal(keys.indexOf('10') < keys.indexOf('9'), true, '"10" sorts before "9"');
  t.equal(new Set(keys).size, 150);
});

t.test('a page limit outside 1..1000 is 400 validation_failed, not clamped', async (t) => {
  const { call } = await withTable(t);
  for (const limit of ['0', '-1', '1001', '1.5', 'ten', '']) {
    expectProblem(t, await call('GET', `/v1/tables/users/rows?limit=${limit}`), 400, 'validation_failed');
  }
  for (const limit of ['1', '1000']) t.equal((await call('GET', `/v1/tables/users/rows?limit=${limit}`)).status, 200);
});

t.test('a page cursor that is not one of ours is 400 validation_failed', async (t) => {
  const { call } = await withTable(t);
  expectProblem(t, await call('GET', '/v1/tables/users/rows?cursor=garbage'), 400, 'validation_failed');
});

t.test('a page ?asOf lists the table as it was', async (t) => {
  const { call } = await withTable(t);
  const a = await call('PUT', '/v1/tables/users/rows/a', { body: {} });
  await call('PUT', '/v1/tables/users/rows/b', { body: {} });
  await call('DELETE', '/v1/tables/users/rows/a');
  const now = await call('GET', '/v1/tables/users/rows');
  t.same(now.json.rows, [{ id: 'b' }]);
  const past = await call('GET', `/v1/tables/users/rows?asOf=${a.json.seq}`);
  t.same(past.json.rows, [{ id: 'a' }]);
  t.equal(past.json.seq, a.json.seq);
});

t.test('row routes need credentials and the route\'s permission', async (t) => {
  const { call, users } = await withTable(t);
  await users.create({ username: 'rows_reader', password: 'reader-password-1', roles: ['reader'] });
  const reader = basicAuth('rows_reader', 'reader-password-1');
  const anonymous = await call('GET', '/v1/tables/users/rows', { auth: false });
  expectProblem(t, anonymous, 401, 'unauthorized');
  t.ok(anonymous.headers['www-authenticate']);
  expectProblem(t, await call('PUT', '/v1/tables/users/rows/a', { body: {}, auth: reader }), 403, 'forbidden');
  expectProblem(t, await call('PATCH', '/v1/tables/users/rows/a', { body: {}, auth: reader }), 403, 'forbidden');
  expectProblem(t, await call('DELETE', '/v1/tables/users/rows/a', { auth: reader }), 403, 'forbidden');
  t.equal((await call('GET', '/v1/tables/users/rows', { auth: reader })).status, 200);
});

t.test('an unknown query-string parameter is 400, so a misspelt asOf never reads the newest state', async (t) => {
  const { call } = await withTable(t);
  const put = await call('PUT', '/v1/tables/users/rows/ada', { body: { n: 1 } });
  await call('PUT', '/v1/tables/users/rows/ada', { body: { n: 2 } });
  expectProblem(t, await call('GET', `/v1/tables/users/rows/ada?asof=${put.json.seq}`), 400, 'validation_failed');
  expectProblem(t, await call('GET', `/v1/tables/users/rows?asof=${put.json.seq}`), 400, 'validation_failed');
  expectProblem(t, await call('GET', '/v1/tables/users/rows?limt=1'), 400, 'validation_failed');
  t.same((await call('GET', `/v1/tables/users/rows/ada?asOf=${put.json.seq}`)).json, { id: 'ada', n: 1 });
});

t.test('HEAD of a row answers its ETag without a body', async (t) => {
  const { call } = await withTable(t);
  const put = await call('PUT', '/v1/tables/users/rows/ada', { body: { n: 1 } });
  const head = await call('HEAD', '/v1/tables/users/rows/ada');
  t.equal(head.status, 200);
  t.equal(head.headers.etag, `"${put.json.seq}"`);
  t.equal(head.text, '');
  t.equal((await call('HEAD', '/v1/tables/users/rows/nope')).status, 404);
});

// Edge cases users hit, over HTTP through buildServer and a real engine: big strings, unicode in values and keys,
// extreme numbers, deep nesting, __proto__ members, delete/re-insert, upserts, several indexes, asOf and paging.

import t, { type Test } from 'tap';
import { limits } from '../../src/limits.js';
import { type Response } from '../helpers/server.js';
import { startApp, expectProblem, withTable } from '../helpers/app.js';



/** PUTs `doc` under `key` and reads it back by GET, by page and by history: each must answer it unchanged. */
async function roundTrip(t: Test, call: Awaited<ReturnType<typeof startApp>>['call'], key: string, doc: unknown) {
  const path = `/v1/tables/docs/rows/${encodeURIComponent(key)}`;
  const put = await call('PUT', path, { body: doc });
  t.equal(put.status, 201, `PUT ${JSON.stringify(key)} (${put.text.slice(0, 200)})`);
  t.equal(put.json?.key, key);
  const expected = { ...(doc as object), id: key };
  const got = await call('GET', path);
  t.same(got.json, expected, `GET ${JSON.stringify(key)}`);
  const history = await call('GET', `${path}/history`);
  t.same(history.json.versions.at(-1).doc, expected, `history of ${JSON.stringify(key)}`);
  const page = await call('POST', '/v1/query', { body: { table: 'docs', where: { id: key } } });
  t.same(page.json.rows, [expected], `query of ${JSON.stringify(key)}`);
  return got;
}

t.test('long strings (10 KB and 1 MB) round-trip; a document over the limit is 413', async (t) => {
  const { call } = await withTable(t);
  await roundTrip(t, call, 'ten-kb', { text: 'x'.repeat(10 * 1024 + 1) });
  await roundTrip(t, call, 'one-mb', { text: 'é😀'.repeat(350_000), more: ['y'.repeat(20_000)] });
  const tooBig = await call('PUT', '/v1/tables/docs/rows/huge', { body: { text: 'z'.repeat(5 * 1024 * 1024) } });
  expectProblem(t, tooBig, 413, 'payload_too_large');
  const overBody = await call('PUT', '/v1/tables/docs/rows/huge', { body: { text: 'z'.repeat(9 * 1024 * 1024) } });
  expectProblem(t, overBody, 413, 'payload_too_large');
  expectProblem(t, await call('GET', '/v1/tables/docs/rows/huge'), 404, 'row_not_found');
});

t.test('unicode, emoji, CJK and control characters in values round-trip exactly', async (t) => {
  const { call } = await withTable(t);
  const doc = {
    emoji: '😀👩‍👩‍👧‍👦🏳️‍🌈',
    cjk: '数据库の時間旅行 데이터베이스',
    rtl: 'مرحبا שלום',
    combining: 'e\u0301 vs é',
    controls: '\u0000\u0001\u0007\b\t\n\r\u001f\u007f',
    quotes: '"\\\'/<script>',
    separators: '\u2028\u2029',
    loneSurrogate: '\ud800',
    nested: { '键': ['ü', { 'ключ': 'значение' }] },
  };
  const got = await roundTrip(t, call, 'unicode', doc);
  t.match(String(got.headers['content-type']), /charset=utf-8/i);
});

t.test('keys with spaces, ü, %2F, emoji, CJK and URL-special characters are their own rows', async (t) => {
  const { call } = await withTable(t);
  const keys = ['a b', 'ü', 'u\u0308', 'a/b', 'a/history', '😀', '数据', '?x=1#y', '%41', '+plus', 'history', 'a\u0001b', ' ', '..x'];
  for (const [i, key] of keys.entries()) await roundTrip(t, call, key, { i });
  const page = await call('GET', '/v1/tables/docs/rows?limit=1000');
  t.same(
    page.json.rows.map((row: { id: string }) => row.id).sort(),
    [...keys].sort(),
    'every key is one row: NFC ü and NFD u\u0308 are different keys, %41 is not A',
  );
  const nested = await call('GET', `/v1/tables/docs/rows/${encodeURIComponent('a/history')}/history`);
  t.equal(nested.json.key, 'a/history', 'the history route of a key that ends in /history');
  t.equal((await call('DELETE', `/v1/tables/docs/rows/${encodeURIComponent('a/b')}`)).status, 200);
  expectProblem(t, await call('GET', `/v1/tables/docs/rows/${encodeURIComponent('a/b')}`), 404, 'row_not_found');
  t.equal((await call('GET', `/v1/tables/docs/rows/a%2Fhistory`)).json.i, keys.indexOf('a/history'));
});

t.test('a key of 1024 characters is accepted, one of 1025 is 400 validation_failed', async (t) => {
  const { call } = await withTable(t);
  await roundTrip(t, call, 'k'.repeat(1024), { long: true });
  await roundTrip(t, call, 'ü'.repeat(1024), { long: 'two UTF-8 bytes each' });
  expectProblem(t, await call('PUT', `/v1/tables/docs/rows/${'k'.repeat(1025)}`, { body: {} }), 400, 'validation_failed');
  expectProblem(t, await call('GET', `/v1/tables/docs/rows/${'k'.repeat(1025)}`), 400, 'validation_failed');
});

t.test('numbers round-trip as IEEE-754 doubles; an integer literal beyond 2^53-1 is 400', async (t) => {
  const { call } = await withTable(t);
  const text =
    '{"max":9007199254740991,"min":-9007199254740991,"big":1e21,"tenth":0.1,"third":0.3333333333333333,' +
    '"tiny":5e-324,"huge":1.7976931348623157e308,"negZero":-0,"one":1.0,"exp":2.5E-3,"ints":[0,-1,42]}';
  const put = await call('PUT', '/v1/tables/docs/rows/n', { body: text });
  t.equal(put.status, 201, put.text);
  const got = await call('GET', '/v1/tables/docs/rows/n');
  t.same(got.json, { ...JSON.parse(text), id: 'n', negZero: 0 });
  t.equal(got.json.max, 2 ** 53 - 1);
  t.equal(got.json.big, 1e21);
  t.equal(got.json.tenth, 0.1);
  t.equal(got.json.tiny, 5e-324);
  t.ok(Object.is(got.json.negZero, 0) || Object.is(got.json.negZero, -0), '-0 reads as zero');

  for (const literal of ['9007199254740992', '-9007199254740992', '12345678901234567890', '[1, 99999999999999999999]']) {
    const res = await call('PUT', '/v1/tables/docs/rows/bad', { body: `{"v":${literal}}` });
    expectProblem(t, res, 400, 'validation_failed');
  }
  const infinite = await call('PUT', '/v1/tables/docs/rows/bad', { body: '{"v":1e400}' });
  t.equal(infinite.status, 400, 'a literal that overflows a double is refused');
  t.equal((await call('PUT', '/v1/tables/docs/rows/ok', { body: '{"v":"9007199254740993"}' })).status, 201, 'as a string it is fine');
  expectProblem(t, await call('GET', '/v1/tables/docs/rows/bad'), 404, 'row_not_found');
});

t.test('nesting up to the depth limit is stored; one level deeper is 400', async (t) => {
  const { call } = await withTable(t);
  const nest = (levels: number): string => '{"a":'.repeat(levels - 1) + '{}' + '}'.repeat(levels - 1);
  const ok = await call('PUT', '/v1/tables/docs/rows/deep', { body: nest(limits.documentDepthMax) });
  t.equal(ok.status, 201, `${limits.documentDepthMax} levels (${ok.text.slice(0, 200)})`);
  const got = await call('GET', '/v1/tables/docs/rows/deep');
  t.equal(JSON.stringify(got.json).split('{').length - 1, limits.documentDepthMax, 'every level came back');
  const arrays = '{"a":' + '['.repeat(limits.documentDepthMax - 1) + ']'.repeat(limits.documentDepthMax - 1) + '}';
  t.equal((await call('PUT', '/v1/tables/docs/rows/arrays', { body: arrays })).status, 201, 'arrays count as levels too');

  const over = await call('PUT', '/v1/tables/docs/rows/deeper', { body: nest(limits.documentDepthMax + 1) });
  t.equal(over.status, 400);
  t.ok(['validation_failed', 'bad_request'].includes(over.json?.code), over.text);
  const far = await call('PUT', '/v1/tables/docs/rows/deeper', { body: '['.repeat(100_000) + ']'.repeat(100_000) });
  t.equal(far.status, 400, 'a very deep body is refused without a stack overflow');
  const patch = await call('PATCH', '/v1/tables/docs/rows/deep', { body: nest(limits.documentDepthMax + 1) });
  t.equal(patch.status, 400);
  const query = await call('POST', '/v1/query', { body: { table: 'docs', where: JSON.parse(nest(limits.documentDepthMax + 1)) } });
  t.equal(query.status, 400, 'a too deep query is refused');
});

t.test('nulls, booleans, empty strings, empty containers and empty member names are kept as sent', async (t) => {
  const { call } = await withTable(t);
  await roundTrip(t, call, 'plain', { n: null, yes: true, no: false, empty: '', obj: {}, arr: [], '': 'empty name', nested: [null, [], [{}]] });
  const byNull = await call('POST', '/v1/query', { body: { table: 'docs', where: { n: null, no: false, empty: '' } } });
  t.same(byNull.json.rows.map((row: { id: string }) => row.id), ['plain']);
});

t.test('__proto__ and constructor members are stored and returned as plain members, polluting nothing', async (t) => {
  const { call } = await withTable(t);
  const text = '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},"inner":{"__proto__":[1]}}';
  const put = await call('PUT', '/v1/tables/docs/rows/proto', { body: text });
  t.equal(put.status, 201, put.text);
  const got = await call('GET', '/v1/tables/docs/rows/proto');
  t.ok(got.text.includes('"__proto__":{"polluted":true}'), got.text);
  const expected = JSON.parse(text);
  expected.id = 'proto';
  t.same(Object.keys(got.json).sort(), ['__proto__', 'constructor', 'id', 'inner']);
  t.ok(got.text.includes('"inner":{"__proto__":[1]}'));
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype is untouched');

  const patched = await call('PATCH', '/v1/tables/docs/rows/proto', { body: '{"__proto__":{"more":1}}' });
  t.equal(patched.status, 200, patched.text);
  const after = await call('GET', '/v1/tables/docs/rows/proto');
  t.ok(after.text.includes('"__proto__":{"polluted":true,"more":1}'), `merge-patched as a plain member: ${after.text}`);
  const query = await call('POST', '/v1/query', { body: JSON.parse('{"table":"docs","where":{"__proto__.more":1}}') });
  t.equal(query.status, 200, query.text);
  t.equal(query.json.rows.length, 1, 'a query can match on it');
  t.equal(({} as Record<string, unknown>).more, undefined);
});

t.test('delete then re-insert of one key: reads see the new row, history shows every event', async (t) => {
  const { call } = await withTable(t);
  const events: Array<[string, number]> = [];
  const remember = (op: string, res: Response) => events.push([op, res.json.seq]);
  remember('put', await call('PUT', '/v1/tables/docs/rows/k', { body: { v: 1 } }));
  remember('delete', await call('DELETE', '/v1/tables/docs/rows/k'));
  const upsert = await call('PATCH', '/v1/tables/docs/rows/k', { body: { v: 2 } });
  t.equal(upsert.status, 201, 'a PATCH after a delete creates the row again');
  remember('patch', upsert);
  remember('delete', await call('DELETE', '/v1/tables/docs/rows/k'));
  const again = await call('PUT', '/v1/tables/docs/rows/k', { body: { v: 3 } });
  t.equal(again.status, 201);
  remember('put', again);
  t.same((await call('GET', '/v1/tables/docs/rows/k')).json, { id: 'k', v: 3 });
  const history = await call('GET', '/v1/tables/docs/rows/k/history');
  t.same(history.json.versions.map((v: { op: string; seq: number }) => [v.op, v.seq]), events);
  t.same(history.json.versions.map((v: { doc: { v: number } | null }) => v.doc?.v ?? null), [1, null, 2, null, 3]);
  t.same((await call('GET', `/v1/tables/docs/rows/k?asOf=${events[1]![1]}`)).status, 404, 'absent while deleted');
  t.same((await call('GET', `/v1/tables/docs/rows/k?asOf=${events[2]![1]}`)).json, { id: 'k', v: 2 });
});

t.test('upsert by PATCH answers 201 and fills in the primary key from the path', async (t) => {
  const { call } = await withTable(t);
  const res = await call('PATCH', '/v1/tables/docs/rows/new', { body: { a: { b: 1 }, gone: null } });
  t.equal(res.status, 201);
  t.same((await call('GET', '/v1/tables/docs/rows/new')).json, { id: 'new', a: { b: 1 } }, 'a null member of a creating patch is dropped');
});

t.test('several indexes on one table each serve their own queries and stay correct after updates', async (t) => {
  const { call } = await withTable(t, { name: 'docs', primaryKey: 'id', indexes: ['color', 'size'] });
  t.equal((await call('POST', '/v1/tables/docs/indexes', { body: { field: 'dims.w' } })).status, 201);
  const colors = ['red', 'blue', 'green'];
  for (let i = 0; i < 30; i++) {
    await call('PUT', `/v1/tables/docs/rows/r${String(i).padStart(2, '0')}`, { body: { color: colors[i % 3], size: i, dims: { w: i % 5 } } });
  }
  await call('PATCH', '/v1/tables/docs/rows/r00', { body: { color: 'blue', dims: { w: 4 } } });
  await call('DELETE', '/v1/tables/docs/rows/r03');
  const cases: Array<[Record<string, unknown>, string, (i: number) => boolean]> = [
    [{ color: 'red' }, 'color', (i) => i % 3 === 0 && i !== 0 && i !== 3],
    [{ size: { $gte: 25 } }, 'size', (i) => i >= 25],
    [{ 'dims.w': 4 }, 'dims.w', (i) => i % 5 === 4 || i === 0],
  ];
  for (const [where, index, expected] of cases) {
    const plan = await call('POST', '/v1/query/explain', { body: { table: 'docs', where } });
    t.match(plan.json.plan, { access: 'index', index }, JSON.stringify(where));
    const rows = await call('POST', '/v1/query', { body: { table: 'docs', where, limit: 1000 } });
    const want = [...Array(30).keys()].filter((i) => i !== 3 && expected(i)).map((i) => `r${String(i).padStart(2, '0')}`);
    t.same(rows.json.rows.map((row: { id: string }) => row.id), want, JSON.stringify(where));
  }
  t.same((await call('GET', '/v1/tables/docs')).json.indexes.sort(), ['color', 'dims.w', 'size']);
});

t.test('asOf by seq and by timestamp reads pages and queries as they were', async (t) => {
  const { call } = await withTable(t);
  const first = await call('PUT', '/v1/tables/docs/rows/a', { body: { v: 1 } });
  await new Promise((resolve) => setTimeout(resolve, 15));
  const second = await call('PUT', '/v1/tables/docs/rows/b', { body: { v: 2 } });
  await call('PATCH', '/v1/tables/docs/rows/a', { body: { v: 3 } });
  const history = await call('GET', '/v1/tables/docs/rows/a/history');
  const firstTs = history.json.versions[0].ts as string;
  const bTs = (await call('GET', '/v1/tables/docs/rows/b/history')).json.versions[0].ts as string;
  t.ok(Date.parse(bTs) > Date.parse(firstTs), 'the two commits are at least a millisecond apart');

  const bySeq = await call('GET', `/v1/tables/docs/rows?asOf=${first.json.seq}`);
  t.same(bySeq.json.rows, [{ id: 'a', v: 1 }]);
  t.equal(bySeq.json.seq, first.json.seq);
  const byTs = await call('GET', `/v1/tables/docs/rows?asOf=${encodeURIComponent(firstTs)}`);
  t.same(byTs.json.rows, [{ id: 'a', v: 1 }], 'asOf equal to a commit ts includes it');
  const beforeAll = await call('GET', `/v1/tables/docs/rows?asOf=${encodeURIComponent(new Date(Date.parse(firstTs) - 1).toISOString())}`);
  t.same(beforeAll.json.rows, [], 'an instant before the first row reads no rows');
  const offset = firstTs.replace('Z', '+00:00');
  t.same((await call('GET', `/v1/tables/docs/rows?asOf=${encodeURIComponent(offset)}`)).json.rows, [{ id: 'a', v: 1 }], 'an RFC 3339 offset works too');
  const queried = await call('POST', '/v1/query', { body: { table: 'docs', asOf: second.json.seq } });
  t.same(queried.json.rows, [
    { id: 'a', v: 1 },
    { id: 'b', v: 2 },
  ]);
  const queriedByTs = await call('POST', '/v1/query', { body: { table: 'docs', asOf: bTs } });
  t.same(queriedByTs.json.rows, queried.json.rows);
});

t.test('cursor paging returns every row exactly once, in key order, while the table changes', async (t) => {
  const { call, db } = await withTable(t);
  const keys: string[] = [];
  for (let i = 0; i < 250; i++) {
    const key = `k${(i * 7919) % 1000}`;
    keys.push(key);
    await db.put({ table: 'docs', key, doc: { i } });
  }
  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const url: string = `/v1/tables/docs/rows?limit=7${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`;
    const page: Response = await call('GET', url);
    t.equal(page.status, 200);
    seen.push(...page.json.rows.map((row: { id: string }) => row.id));
    cursor = page.json.nextCursor;
    pages++;
    // Changes after the first page's snapshot must not show up in this listing.
    await call('DELETE', `/v1/tables/docs/rows/${keys[pages]}`);
    await call('PUT', `/v1/tables/docs/rows/new${pages}`, { body: {} });
  } while (cursor !== null && pages < 100);
  t.equal(pages, Math.ceil(250 / 7));
  t.same(seen, [...keys].sort(), 'every row once, in code-point key order');
});

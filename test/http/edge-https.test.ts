// End to end over real HTTPS: the built `driftdb serve` with its self-signed certificate, spoken to by a real client,
// so URL encoding, body parsing, headers and TLS are those a user meets, not fastify.inject's.

import t from 'tap';
import { startServer, type TestServer } from '../helpers/server.js';

let server: TestServer;

t.before(async () => {
  server = await startServer({ args: ['--tls', 'self-signed', '--log-level', 'warn'] });
});

t.teardown(async () => {
  await server?.stop();
});

t.test('the server answers over HTTPS with HSTS and nosniff', async (t) => {
  t.match(server.url, /^https:\/\//);
  const res = await server.request('GET', '/v1/tables');
  t.equal(res.status, 200);
  t.ok(res.headers['strict-transport-security'], 'HSTS is sent over HTTPS');
  t.equal(res.headers['x-content-type-options'], 'nosniff');
});

t.test('a table, a unicode document under an awkward key, its history and a page, over the wire', async (t) => {
  t.equal((await server.request('POST', '/v1/tables', { body: { name: 'wire', primaryKey: 'id', indexes: ['tag'] } })).status, 201);
  const key = 'a/b ü 😀 ?#%';
  const path = `/v1/tables/wire/rows/${encodeURIComponent(key)}`;
  const doc = { tag: '数据', text: 'x'.repeat(20_000), nested: { list: [1, 0.1, 1e21, null, true, ''] }, ctl: '\u0000\u001f' };
  const put = await server.request('PUT', path, { body: doc });
  t.equal(put.status, 201, put.text);
  t.equal(put.json.key, key);
  t.equal(put.headers.etag, `"${put.json.seq}"`);

  const got = await server.request('GET', path);
  t.equal(got.status, 200);
  t.same(got.json, { ...doc, id: key });
  t.equal(got.headers.etag, put.headers.etag);
  t.equal((await server.request('GET', path, { headers: { 'if-none-match': String(put.headers.etag) } })).status, 304);

  const stale = await server.request('PUT', path, { body: doc, headers: { 'if-match': `"${put.json.seq - 1}"` } });
  t.equal(stale.status, 412);
  t.match(String(stale.headers['content-type']), /^application\/problem\+json/);
  t.equal(stale.json.currentSeq, put.json.seq);

  const history = await server.request('GET', `${path}/history`);
  t.same(history.json.versions.map((v: { op: string }) => v.op), ['put']);
  const page = await server.request('GET', '/v1/tables/wire/rows?limit=1');
  t.same(page.json.rows, [{ ...doc, id: key }]);
  const query = await server.request('POST', '/v1/query', { body: { table: 'wire', where: { tag: '数据' } } });
  t.same(query.json.rows.map((row: { id: string }) => row.id), [key]);
});

t.test('raw request bodies: big integers, deep nesting and __proto__ as a user sends them', async (t) => {
  t.equal((await server.request('POST', '/v1/tables', { body: { name: 'raw', primaryKey: 'id' } })).status, 201);
  const bigInt = await server.request('PUT', '/v1/tables/raw/rows/big', { body: '{"v":9007199254740993}' });
  t.equal(bigInt.status, 400);
  t.equal(bigInt.json.code, 'validation_failed');
  const deep = await server.request('PUT', '/v1/tables/raw/rows/deep', { body: '['.repeat(50_000) + ']'.repeat(50_000) });
  t.equal(deep.status, 400);
  const proto = await server.request('PUT', '/v1/tables/raw/rows/proto', { body: '{"__proto__":{"x":1}}' });
  t.equal(proto.status, 201, proto.text);
  const got = await server.request('GET', '/v1/tables/raw/rows/proto');
  t.ok(got.text.includes('"__proto__":{"x":1}'), got.text);
  t.same(Object.keys(got.json).sort(), ['__proto__', 'id']);
  const dot = await server.request('PUT', '/v1/tables/raw/rows/%2E', { body: {} });
  t.ok([201, 400].includes(dot.status), `a key "." sent raw is stored or refused, never misrouted (${dot.status})`);
});

t.test('errors over the wire are problem+json without server internals', async (t) => {
  const res = await server.request('GET', '/v1/tables/nope/rows/x');
  t.equal(res.status, 404);
  t.match(String(res.headers['content-type']), /^application\/problem\+json/);
  t.match(res.json, { code: 'table_not_found', status: 404 });
  const malformed = await server.request('POST', '/v1/query', { body: '{"table": "nope", ' });
  t.equal(malformed.status, 400);
  t.notMatch(malformed.text, /\/work\/|node_modules|at [A-Za-z]+ \(/, 'no path or stack trace');
  const unauthenticated = await server.request('GET', '/v1/tables', { auth: false });
  t.equal(unauthenticated.status, 401);
  t.ok(unauthenticated.headers['www-authenticate']);
});

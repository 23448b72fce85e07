// The real server process over plain HTTP: health, headers, request ids, problem+json for every kind of bad
// request, body parsing rules, and a clean exit on SIGTERM that lets an in-flight request finish.

import http from 'node:http';
import net from 'node:net';
import t, { type Test } from 'tap';
import { startServer, type TestServer } from '../helpers/server.js';

const problemType = /^application\/problem\+json/;

let server: TestServer;

t.before(async () => {
  server = await startServer();
  const created = await server.request('POST', '/v1/tables', { body: { name: 'things', primaryKey: 'id' } });
  if (created.status !== 201) throw new Error(`cannot create the test table: ${created.status} ${created.text}`);
});

t.teardown(async () => {
  await server?.kill();
});

/** Writes raw bytes on a fresh connection and answers what comes back until the JSON body ends or the socket closes. */
function rawExchange(url: URL, request: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const socket = net.connect(Number(url.port), url.hostname, () => socket.write(request));
    let text = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      text += chunk;
      if (/\r\n\r\n[\s\S]*\}$/.test(text)) socket.destroy();
    });
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
    socket.setTimeout(5000, () => socket.destroy(new Error('no answer')));
  });
}

function checkProblem(t: Test, response: { status: number; headers: http.IncomingHttpHeaders; json: any }, status: number, code: string): void {
  t.equal(response.status, status, `status ${status}`);
  t.match(response.headers['content-type'], problemType, 'problem+json');
  t.equal(response.json?.code, code, `code ${code}`);
  t.equal(response.json?.status, status, 'body status matches');
  t.type(response.json?.type, 'string');
  t.type(response.json?.title, 'string');
  t.type(response.json?.detail, 'string');
}

t.test('GET /healthz and GET /readyz answer 200 without credentials', async (t) => {
  const health = await server.request('GET', '/healthz', { auth: false });
  t.equal(health.status, 200);
  t.same(health.json, { status: 'ok' });
  const ready = await server.request('GET', '/readyz', { auth: false });
  t.equal(ready.status, 200);
  t.equal(ready.json.status, 'ready');
});

t.test('every response carries nosniff, and plain HTTP no Strict-Transport-Security', async (t) => {
  for (const [path, auth] of [['/healthz', false], ['/v1/tables', undefined], ['/nope', false], ['/v1/tables', false]] as const) {
    const response = await server.request('GET', path, { auth });
    t.equal(response.headers['x-content-type-options'], 'nosniff', `${path} ${response.status}`);
    t.notOk(response.headers['strict-transport-security'], 'no HSTS over plain HTTP');
  }
});

t.test('a sane X-Request-Id is echoed; a missing or odd one is replaced by a generated id', async (t) => {
  const kept = await server.request('GET', '/healthz', { headers: { 'x-request-id': 'client-42.a:b' } });
  t.equal(kept.headers['x-request-id'], 'client-42.a:b');
  const generated = await server.request('GET', '/healthz');
  t.match(generated.headers['x-request-id'], /^[0-9a-f-]{36}$/);
  const odd = await server.request('GET', '/healthz', { headers: { 'x-request-id': 'has spaces <and> stuff' } });
  t.match(odd.headers['x-request-id'], /^[0-9a-f-]{36}$/);
  const long = await server.request('GET', '/healthz', { headers: { 'x-request-id': 'x'.repeat(129) } });
  t.match(long.headers['x-request-id'], /^[0-9a-f-]{36}$/);
  const onError = await server.request('GET', '/v1/tables', { auth: false, headers: { 'x-request-id': 'err-1' } });
  t.equal(onError.headers['x-request-id'], 'err-1', 'errors carry it too');
});

t.test('/v1 without credentials is 401 unauthorized with WWW-Authenticate', async (t) => {
  const response = await server.request('GET', '/v1/tables', { auth: false });
  checkProblem(t, response, 401, 'unauthorized');
  t.match(response.headers['www-authenticate'], /^Basic realm="driftdb"/);
});

t.test('an unknown route is 404 not_found as problem+json', async (t) => {
  const response = await server.request('GET', '/no/such/route', { auth: false });
  checkProblem(t, response, 404, 'not_found');
});

t.test('a malformed or oversized URL is 400 bad_request as problem+json, with nosniff and a request id', async (t) => {
  for (const path of ['/v1/tables/%E0%A4%A/rows/x', `/v1/tables/things/rows/${'k'.repeat(10_000)}`]) {
    const response = await server.request('GET', path);
    checkProblem(t, response, 400, 'bad_request');
    t.equal(response.headers['x-content-type-options'], 'nosniff');
    t.ok(response.headers['x-request-id']);
    t.ok(response.text.length < 500, 'the URL is not echoed back');
  }
});

t.test('headers too large for Node to parse are a 400 bad_request problem, and the connection closes', async (t) => {
  const url = new URL(server.url);
  const answer = await rawExchange(url, `GET /v1/tables/${'k'.repeat(20_000)} HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`);
  t.match(answer, /^HTTP\/1\.1 400 /);
  t.match(answer, /content-type: application\/problem\+json/i);
  t.match(answer, /x-content-type-options: nosniff/i);
  t.match(answer, /"code":"bad_request"/);
  t.equal((await server.request('GET', '/healthz')).status, 200, 'the server is fine');
});

t.test('a body that is not JSON is 400 bad_request', async (t) => {
  const response = await server.request('PUT', '/v1/tables/things/rows/a', { body: '{"id": "a",' });
  checkProblem(t, response, 400, 'bad_request');
});

t.test('a body of another media type is 415 unsupported_media_type', async (t) => {
  const response = await server.request('PUT', '/v1/tables/things/rows/a', {
    body: 'id=a',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  checkProblem(t, response, 415, 'unsupported_media_type');
  const textPlain = await server.request('POST', '/v1/query', { body: '{}', headers: { 'content-type': 'text/plain' } });
  checkProblem(t, textPlain, 415, 'unsupported_media_type');
});

t.test('a body over the size limit is 413 payload_too_large, told by its Content-Length before it is sent', async (t) => {
  // A raw socket, as curl does: the server answers from the headers, and a client still uploading 8 MiB
  // would meet a closed socket before it reads the answer.
  const url = new URL(server.url);
  const head = [
    'PUT /v1/tables/things/rows/big HTTP/1.1',
    `Host: ${url.host}`,
    `Authorization: ${server.auth}`,
    'Content-Type: application/json',
    `Content-Length: ${8 * 1024 * 1024 + 1}`,
    '',
    '',
  ].join('\r\n');
  const answer = await rawExchange(url, head);
  t.match(answer, /^HTTP\/1\.1 413 /);
  t.match(answer, /content-type: application\/problem\+json/i);
  t.match(answer, /"code":"payload_too_large"/);
  t.match(answer, /x-content-type-options: nosniff/i);
});

t.test('an integer literal beyond ±(2^53−1) is 400 validation_failed; safe integers, doubles and strings pass', async (t) => {
  for (const literal of ['9007199254740992', '-9007199254740992', '12345678901234567890', '100000000000000000000000']) {
    const response = await server.request('PUT', '/v1/tables/things/rows/n', { body: `{"n": ${literal}}` });
    checkProblem(t, response, 400, 'validation_failed');
    t.match(response.json.detail, /as strings/);
  }
  const cases: Array<[string, unknown]> = [
    ['{"n": 9007199254740991}', 9007199254740991],
    ['{"n": -9007199254740991}', -9007199254740991],
    ['{"n": 1e21}', 1e21],
    ['{"n": 12345678901234567890.5}', 12345678901234567890.5],
    ['{"n": "12345678901234567890"}', '12345678901234567890'],
    ['{"n": "say \\" 12345678901234567890"}', 'say " 12345678901234567890'],
  ];
  for (const [body, expected] of cases) {
    const put = await server.request('PUT', '/v1/tables/things/rows/n', { body });
    t.ok(put.status === 200 || put.status === 201, `${body} accepted (${put.status} ${put.text})`);
    const read = await server.request('GET', '/v1/tables/things/rows/n');
    t.equal(read.json.n, expected, `${body} round-trips`);
  }
});

t.test('nesting deeper than 64 levels is 400 validation_failed; 64 levels pass', async (t) => {
  const nested = (levels: number): string => '{"a":'.repeat(levels - 1) + '{"a":1' + '}'.repeat(levels);
  const tooDeep = await server.request('PUT', '/v1/tables/things/rows/deep', { body: `{"id":"deep","x":${nested(64)}}` });
  checkProblem(t, tooDeep, 400, 'validation_failed');
  const deepest = await server.request('PUT', '/v1/tables/things/rows/deep', { body: `{"id":"deep","x":${nested(63)}}` });
  t.equal(deepest.status, 201, deepest.text);
  const huge = await server.request('POST', '/v1/query', { body: '['.repeat(200_000) + ']'.repeat(200_000) });
  checkProblem(t, huge, 400, 'validation_failed');
});

t.test('a "__proto__" key is stored and read back as a plain key', async (t) => {
  const put = await server.request('PUT', '/v1/tables/things/rows/proto', {
    body: '{"id":"proto","__proto__":{"admin":true},"nested":{"__proto__":[1]}}',
  });
  t.equal(put.status, 201, put.text);
  const read = await server.request('GET', '/v1/tables/things/rows/proto');
  t.equal(read.status, 200);
  t.match(read.text, /"__proto__":\{"admin":true\}/);
  const doc = JSON.parse(read.text);
  t.ok(Object.hasOwn(doc, '__proto__'), 'own key');
  t.same(Object.getPrototypeOf(doc), Object.prototype, 'prototype untouched');
});

t.test('application/merge-patch+json is accepted for PATCH', async (t) => {
  const patch = await server.request('PATCH', '/v1/tables/things/rows/mp', {
    body: '{"v":1}',
    headers: { 'content-type': 'application/merge-patch+json' },
  });
  t.equal(patch.status, 201, patch.text);
});

t.test('a failed schema check is 400 validation_failed with an errors list', async (t) => {
  const response = await server.request('POST', '/v1/tables', { body: { name: 42 } });
  checkProblem(t, response, 400, 'validation_failed');
  t.ok(Array.isArray(response.json.errors) && response.json.errors.length > 0, 'errors list');
});

t.test('admin routes: checkpoint answers its seq and stats the engine figures', async (t) => {
  const put = await server.request('PUT', '/v1/tables/things/rows/c', { body: { v: 1 } });
  const checkpoint = await server.request('POST', '/v1/admin/checkpoint');
  t.equal(checkpoint.status, 200, checkpoint.text);
  t.ok(checkpoint.json.seq >= put.json.seq, 'checkpoint covers the last write');
  const stats = await server.request('GET', '/v1/admin/stats');
  t.equal(stats.status, 200);
  t.ok(stats.json.seq >= put.json.seq);
  t.ok(stats.json.tables >= 1);
  t.equal(stats.json.checkpointSeq, checkpoint.json.seq);
});

t.test('GET /openapi.json serves the OpenAPI document as JSON', async (t) => {
  const response = await server.request('GET', '/openapi.json', { auth: false });
  t.equal(response.status, 200, response.text.slice(0, 200));
  t.match(response.headers['content-type'], /^application\/json/);
  t.match(response.json, { openapi: /^3\./, paths: {} });
});

t.test('SIGTERM lets an in-flight request finish, then the process exits 0', async (t) => {
  const own = await startServer();
  t.teardown(() => own.kill());
  await own.request('POST', '/v1/tables', { body: { name: 'slow', primaryKey: 'id' } });
  const url = new URL('/v1/tables/slow/rows/k', own.url);
  const body = JSON.stringify({ id: 'k', v: 'in flight' });
  const answer = new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = http.request(url, {
      method: 'PUT',
      headers: { authorization: own.auth, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    });
    req.on('error', reject);
    req.write(body.slice(0, 10));
    setTimeout(() => {
      own.proc.kill('SIGTERM');
      setTimeout(() => req.end(body.slice(10)), 300);
    }, 200);
  });
  const response = await answer;
  t.equal(response.status, 201, `in-flight write finished: ${response.text}`);
  const { code } = await own.exited;
  t.equal(code, 0, 'exit code 0');
  t.match(own.stdout(), /"msg":"stopped"/);
});

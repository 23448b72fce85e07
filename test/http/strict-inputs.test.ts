// Inputs the server cannot honour are refused, not silently reinterpreted: query parameters a route does not
// declare, and bodies in a Content-Encoding it does not decode.

import t from 'tap';
import { expectProblem, startApp } from '../helpers/app.js';

t.test('a query parameter a /v1 route does not declare is 400 validation_failed, and nothing is written', async (t) => {
  const { call } = await startApp(t);
  t.equal((await call('POST', '/v1/tables', { body: { name: 'k', primaryKey: 'id' } })).status, 201);
  const refused: Array<[string, string, unknown?]> = [
    ['PUT', '/v1/tables/k/rows/a?asOf=5', { v: 1 }],
    ['PATCH', '/v1/tables/k/rows/a?x=1', { v: 1 }],
    ['DELETE', '/v1/tables/k/rows/a?asOf=5'],
    ['GET', '/v1/tables/k/rows/a/history?limit=1'],
    ['GET', '/v1/tables/k?asOf=abc'],
    ['GET', '/v1/tables?limit=abc'],
    ['POST', '/v1/query?x=1', { table: 'k' }],
  ];
  for (const [method, url, body] of refused) {
    const res = await call(method, url, body === undefined ? {} : { body });
    expectProblem(t, res, 400, 'validation_failed');
    t.match(res.text, /querystring/, `${method} ${url} names the query string`);
  }
  t.same((await call('GET', '/v1/tables/k/rows')).json.rows, [], 'nothing was written');
  t.equal((await call('GET', '/v1/tables/k/rows?limit=5')).status, 200, 'declared parameters still work');
  t.equal((await call('GET', '/healthz?probe=1', { auth: false })).status, 200, 'health checks outside /v1 take any');
});

t.test('a body with a Content-Encoding other than identity is 415 unsupported_media_type', async (t) => {
  const { call } = await startApp(t);
  t.equal((await call('POST', '/v1/tables', { body: { name: 'k', primaryKey: 'id' } })).status, 201);
  for (const encoding of ['gzip', 'br', 'deflate, gzip']) {
    const res = await call('PUT', '/v1/tables/k/rows/a', { body: { v: 1 }, headers: { 'content-encoding': encoding } });
    expectProblem(t, res, 415, 'unsupported_media_type');
  }
  t.equal((await call('GET', '/v1/tables/k/rows/a')).status, 404, 'nothing was written');
  const plain = await call('PUT', '/v1/tables/k/rows/a', { body: { v: 1 }, headers: { 'content-encoding': 'Identity' } });
  t.equal(plain.status, 201, 'identity is no encoding');
});

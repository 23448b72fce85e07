// POST /v1/transactions takes an optional body (openapi.yaml: requestBody required: false): no body, an empty body
// and a literal `null` all mean `{}`, so the defaults apply; anything else must still be an object of known members.

import t from 'tap';
import { expectProblem, startApp, type Call } from '../helpers/app.js';

type Test = Parameters<Parameters<typeof t.test>[0]>[0];

/** Begins with `options` as the request, checks 201 and the defaults, and answers the transaction id. */
async function beginsWithDefaults(t: Test, call: Awaited<ReturnType<typeof startApp>>['call'], options: Call): Promise<string> {
  const res = await call('POST', '/v1/transactions', options);
  t.equal(res.status, 201, `201 (${res.text.slice(0, 200)})`);
  t.equal(res.json?.isolation, 'serializable', 'default isolation');
  t.equal(res.json?.readOnly, false, 'default readOnly');
  t.type(res.json?.id, 'string');
  return res.json?.id as string;
}

t.test('POST /v1/transactions without a body or Content-Type begins a serializable read-write transaction', async (t) => {
  const { call } = await startApp(t);
  t.equal((await call('POST', '/v1/tables', { body: { name: 'docs', primaryKey: 'id' } })).status, 201);
  const id = await beginsWithDefaults(t, call, {});
  const put = await call('PUT', '/v1/tables/docs/rows/a', { body: { v: 1 }, headers: { 'transaction-id': id } });
  t.equal(put.status, 201, 'the transaction takes writes: it is not read-only');
  t.equal((await call('POST', `/v1/transactions/${id}/commit`)).status, 200);
  t.equal((await call('GET', '/v1/tables/docs/rows/a')).status, 200, 'the write committed');
});

t.test('an empty body, with Content-Type: application/json or with Content-Length: 0, is no body', async (t) => {
  const { call } = await startApp(t);
  await beginsWithDefaults(t, call, { headers: { 'content-type': 'application/json' } });
  await beginsWithDefaults(t, call, { body: '' });
  await beginsWithDefaults(t, call, { headers: { 'content-length': '0' } });
});

t.test('a literal null body is the same as no body', async (t) => {
  const { call } = await startApp(t);
  await beginsWithDefaults(t, call, { body: 'null' });
  await beginsWithDefaults(t, call, { body: ' null\n' });
});

t.test('{} begins with the defaults, and given members still win over them', async (t) => {
  const { call } = await startApp(t);
  await beginsWithDefaults(t, call, { body: {} });
  const res = await call('POST', '/v1/transactions', { body: { isolation: 'snapshot', readOnly: true } });
  t.equal(res.status, 201, res.text);
  t.equal(res.json.isolation, 'snapshot');
  t.equal(res.json.readOnly, true);
});

t.test('a body that is neither an object nor null, or has unknown members, is still 400 validation_failed', async (t) => {
  const { call } = await startApp(t);
  for (const body of ['[]', '"serializable"', '0', 'false', '{"isolation":"chaos"}', '{"readonly":true}']) {
    expectProblem(t, await call('POST', '/v1/transactions', { body }), 400, 'validation_failed');
  }
  expectProblem(t, await call('POST', '/v1/transactions', { body: '{' }), 400, 'bad_request');
});

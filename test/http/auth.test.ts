// Basic authentication and role permissions against the real server: every /v1 route needs valid credentials,
// and a route's declared permission decides what admin, writer and reader may do.

import t, { type Test } from 'tap';
import { adminPassword, basicAuth, startServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
const writer = basicAuth('wendy', 'writer-password');
const reader = basicAuth('rick', 'reader-password');

t.before(async () => {
  server = await startServer();
  for (const [username, password, role] of [['wendy', 'writer-password', 'writer'], ['rick', 'reader-password', 'reader']] as const) {
    const created = await server.request('POST', '/v1/admin/users', { body: { username, password, roles: [role] } });
    if (created.status !== 201) throw new Error(`creating ${username}: ${created.status} ${created.text}`);
  }
});

t.teardown(() => server?.kill());

function check401(t: Test, response: { status: number; headers: Record<string, unknown>; json: any }, label: string): void {
  t.equal(response.status, 401, label);
  t.equal(response.json?.code, 'unauthorized', `${label}: code`);
  t.equal(response.headers['www-authenticate'], 'Basic realm="driftdb", Bearer realm="driftdb"', `${label}: challenge`);
}

t.test('missing, malformed and wrong credentials are all 401 unauthorized with WWW-Authenticate', async (t) => {
  const cases: Array<[string, string | false]> = [
    ['missing', false],
    ['empty', ''],
    ['wrong password', basicAuth('admin', 'not-it')],
    ['unknown user', basicAuth('nobody', adminPassword)],
    ['no colon', `Basic ${Buffer.from('admin').toString('base64')}`],
    ['empty username', basicAuth('', adminPassword)],
    ['not base64', 'Basic !!!!'],
    ['bad padding', 'Basic YWRtaW4'],
    ['scheme only', 'Basic'],
    ['other scheme', 'Digest username="admin"'],
    ['unknown bearer token', 'Bearer abc.def'],
  ];
  for (const [label, auth] of cases) {
    check401(t, await server.request('GET', '/v1/tables', auth === false ? { auth: false } : { auth }), label);
  }
});

t.test('the scheme is case-insensitive and a right password works repeatedly (cached)', async (t) => {
  const lower = `basic ${Buffer.from(`admin:${adminPassword}`).toString('base64')}`;
  for (let i = 0; i < 3; i++) t.equal((await server.request('GET', '/v1/tables', { auth: lower })).status, 200);
});

t.test('credentials are checked before the body is read: no credentials and a bad body is still 401', async (t) => {
  check401(t, await server.request('POST', '/v1/tables', { auth: false, body: '{not json' }), 'bad body');
  check401(t, await server.request('POST', '/v1/tables', { auth: false, body: 'x', headers: { 'content-type': 'text/plain' } }), 'bad type');
});

t.test('a reader reads but may not write or administer: 403 forbidden', async (t) => {
  t.equal((await server.request('GET', '/v1/tables', { auth: reader })).status, 200);
  const create = await server.request('POST', '/v1/tables', { auth: reader, body: { name: 'r', primaryKey: 'id' } });
  t.equal(create.status, 403);
  t.equal(create.json.code, 'forbidden');
  t.match(create.headers['content-type'], /^application\/problem\+json/);
  t.equal((await server.request('GET', '/v1/admin/stats', { auth: reader })).status, 403);
});

t.test('a writer creates tables and writes rows, but may not use admin routes or drop tables', async (t) => {
  const create = await server.request('POST', '/v1/tables', { auth: writer, body: { name: 'w', primaryKey: 'id' } });
  t.equal(create.status, 201, create.text);
  const put = await server.request('PUT', '/v1/tables/w/rows/1', { auth: writer, body: { v: 1 } });
  t.equal(put.status, 201, put.text);
  t.equal((await server.request('GET', '/v1/tables/w/rows/1', { auth: reader })).status, 200, 'a reader reads it');
  t.equal((await server.request('PUT', '/v1/tables/w/rows/2', { auth: reader, body: { v: 2 } })).status, 403);
  t.equal((await server.request('POST', '/v1/admin/checkpoint', { auth: writer })).status, 403);
  t.equal((await server.request('DELETE', '/v1/tables/w', { auth: writer })).status, 403);
});

t.test('the admin may do everything', async (t) => {
  t.equal((await server.request('GET', '/v1/admin/stats')).status, 200);
  t.equal((await server.request('POST', '/v1/admin/checkpoint')).status, 200);
});

t.test('a password is never echoed in an answer or the log', async (t) => {
  await server.request('GET', '/v1/tables', { auth: basicAuth('admin', 'typo-secret-123') });
  t.notMatch(server.stdout(), /typo-secret-123|writer-password|reader-password/);
  t.notMatch(server.stdout(), new RegExp(Buffer.from('admin:typo-secret-123').toString('base64')));
});

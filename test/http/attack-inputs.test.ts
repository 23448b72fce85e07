// What a pen tester sends, against the real server: header smuggling, path traversal and odd encodings in table names
// and keys, __proto__ and constructor in every JSON body, huge and deeply nested bodies, slow-loris connections, and
// TLS below the minimum version. No answer may be a 5xx or carry a stack trace or a server path.

import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import t from 'tap';
import { parseResponses } from '../helpers/raw-http.js';
import { adminAuth, basicAuth, makeTempDir, spawnServer, startServer, type Response, type TestServer } from '../helpers/server.js';

let server: TestServer;
let reader: string;
/** Every answer this file receives, to check at the end that none leaks a trace or a path. */
const answers: string[] = [];

t.before(async () => {
  server = await startServer({ args: ['--request-timeout-ms', '500', '--log-level', 'warn'] });
  const create = await server.request('POST', '/v1/tables', { body: { name: 'things', primaryKey: 'id' } });
  if (create.status !== 201) throw new Error(create.text);
  await server.request('POST', '/v1/admin/users', { body: { username: 'rita', password: 'rita-password', roles: ['reader'] } });
  reader = basicAuth('rita', 'rita-password');
});

t.teardown(() => server?.kill());

async function call(method: string, urlPath: string, options: Parameters<TestServer['request']>[2] = {}): Promise<Response> {
  const res = await server.request(method, urlPath, options);
  answers.push(res.text);
  return res;
}

/** Raw bytes on a fresh connection; answers everything received until the server closes it (or `waitMs` passes). */
function raw(bytes: string | Buffer, waitMs = 5000): Promise<string> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(url.port), url.hostname, () => socket.write(bytes));
    let text = '';
    socket.setEncoding('latin1').on('data', (chunk: string) => {
      text += chunk;
    });
    socket.on('close', () => {
      answers.push(text);
      resolve(text);
    });
    socket.on('error', reject);
    setTimeout(() => socket.destroy(), waitMs).unref();
  });
}

t.test('header smuggling: two Authorization headers, bare CR or LF, folded lines, CL with TE are all refused', async (t) => {
  const bad = 'Basic ' + Buffer.from('admin:wrong').toString('base64');
  for (const [first, second] of [[adminAuth, bad], [bad, adminAuth], [adminAuth, adminAuth]]) {
    const text = await raw(`GET /v1/tables HTTP/1.1\r\nHost: x\r\nAuthorization: ${first}\r\nAuthorization: ${second}\r\nConnection: close\r\n\r\n`);
    const [res] = parseResponses(text);
    t.equal(res?.status, 400, 'two Authorization headers');
    t.match(res?.body, /more than one Authorization/);
  }
  const attempts: Array<[string, string]> = [
    ['a bare CR inside a header value', `GET /v1/tables HTTP/1.1\r\nHost: x\r\nAuthorization: ${adminAuth}\rX-Injected: 1\r\n\r\n`],
    ['a bare LF inside a header value', `GET /v1/tables HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\nAuthorization: ${adminAuth}\r\n\r\n`],
    ['an obsolete folded header', `GET /v1/tables HTTP/1.1\r\nHost: x\r\nAuthorization: Basic\r\n ${adminAuth.slice(6)}\r\n\r\n`],
    [
      'Content-Length beside Transfer-Encoding (a smuggled second request)',
      `POST /v1/query HTTP/1.1\r\nHost: x\r\nAuthorization: ${adminAuth}\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nDELETE /v1/tables/things HTTP/1.1\r\nHost: x\r\nAuthorization: ${adminAuth}\r\n\r\n`,
    ],
    ['a NUL in the request line', `GET /v1/tables\u0000 HTTP/1.1\r\nHost: x\r\n\r\n`],
  ];
  for (const [label, bytes] of attempts) {
    const responses = parseResponses(await raw(bytes));
    t.equal(responses.length, 1, `${label}: one answer`);
    t.equal(responses[0]?.status, 400, label);
    t.match(responses[0]?.headers['content-type'], /problem\+json/, `${label}: a problem`);
  }
  t.equal((await call('GET', '/v1/tables/things')).status, 200, 'the smuggled DELETE did not run');
});

t.test('path traversal and odd encodings in table names reach no system table and no file', async (t) => {
  // Names a client's URL parser leaves alone (it resolves "%2E%2E" itself, as documented for keys).
  const names = ['..%2F..%2Fetc%2Fpasswd', '_users', '%5Fusers', '_audit', '%5F%74okens', 'th%C4%B1ngs', '%EF%BD%94hings', 'things%00', 'things%20', 'x'.repeat(64), '%C0%AE%C0%AE'];
  for (const name of names) {
    for (const suffix of ['', '/rows', '/rows/admin']) {
      const res = await call('GET', `/v1/tables/${name}${suffix}`);
      t.equal(res.status, 400, `${name}${suffix}: ${res.text.slice(0, 100)}`);
      t.notMatch(res.text, /scrypt|"password"|"hash"/);
    }
  }
  for (const body of [{ table: '_users' }, { table: '../_users' }, { table: '__proto__' }]) {
    t.equal((await call('POST', '/v1/query', { body })).status, 400, `query ${JSON.stringify(body)}`);
  }
  for (const op of [{ op: 'get', table: '_users', key: 'admin' }, { op: 'put', table: '_tokens', key: 'k', doc: {} }, { op: 'query', table: '_audit' }]) {
    t.equal((await call('POST', '/v1/batch', { body: { ops: [op] } })).status, 400, `batch ${op.op} ${op.table}`);
  }
  t.equal((await call('POST', '/v1/tables', { body: { name: '_users', primaryKey: 'username' } })).status, 400);
  const listed = await call('GET', '/v1/tables');
  t.same(listed.json.tables.map((table: { name: string }) => table.name), ['things'], 'system tables are not listed');
});

t.test('keys take any characters literally: traversal, double encoding and control characters are just keys', async (t) => {
  const keys = ['../../etc/passwd', '%2e%2e', '%252e%252e', 'a\u0000b', '\u202Eevil', 'ü', 'u\u0308', '💥', ' ', '/'];
  for (const key of keys) {
    const put = await call('PUT', `/v1/tables/things/rows/${encodeURIComponent(key)}`, { body: { v: key } });
    t.ok(put.status === 201 || put.status === 200, `PUT ${JSON.stringify(key)}: ${put.status}`);
    const got = await call('GET', `/v1/tables/things/rows/${encodeURIComponent(key)}`);
    t.same(got.json, { v: key, id: key }, `GET ${JSON.stringify(key)}`);
  }
  // Dot segments sent as they are (a URL library would resolve them first): the router does not, so no traversal.
  for (const target of ['/v1/tables/things/rows/..', '/v1/tables/things/rows/../../admin/users', '/v1/tables/%2E%2E/rows', '/v1/tables/things/../../admin/stats']) {
    const [answer] = parseResponses(await raw(`GET ${target} HTTP/1.1\r\nHost: x\r\nAuthorization: ${reader}\r\nConnection: close\r\n\r\n`));
    t.ok(answer !== undefined && [400, 404].includes(answer.status), `${target}: ${answer?.status} ${answer?.body.slice(0, 80)}`);
    t.notMatch(answer?.body, /"users"|"seq"/, `${target} reaches nothing`);
  }
  const badEncoding = await call('GET', '/v1/tables/things/rows/%E0%A4%A');
  t.equal(badEncoding.status, 400, 'malformed percent-encoding');
  t.equal((await call('GET', `/v1/tables/things/rows/${'k'.repeat(20_000)}`)).status, 400, 'a key too long for any row');
});

t.test('__proto__, constructor and prototype in every JSON body are refused or kept as plain data, and change nothing else', async (t) => {
  const poison = '{"__proto__":{"polluted":true,"roles":["admin"]},"constructor":{"prototype":{"polluted":true}}}';
  const withPoison = (json: string): string => `${json.slice(0, -1)}${json.length > 2 ? ',' : ''}${poison.slice(1)}`;
  const bodies: Array<[string, string, string, string | false]> = [
    ['POST', '/v1/auth/token', '{"username":"rita","password":"rita-password"}', false],
    ['PUT', '/v1/auth/password', '{"currentPassword":"rita-password","newPassword":"rita-password-2"}', reader],
    ['POST', '/v1/admin/users', '{"username":"mallory","password":"mallory-password","roles":["reader"]}', adminAuth],
    ['PUT', '/v1/admin/users/rita/roles', '{"roles":["reader"]}', adminAuth],
    ['PUT', '/v1/admin/users/rita/password', '{"password":"rita-password"}', adminAuth],
    ['POST', '/v1/tables', '{"name":"poisoned","primaryKey":"id"}', adminAuth],
    ['POST', '/v1/tables/things/indexes', '{"field":"v"}', adminAuth],
    ['POST', '/v1/query', '{"table":"things"}', adminAuth],
    ['POST', '/v1/batch', '{"ops":[{"op":"get","table":"things","key":"x"}]}', adminAuth],
    ['POST', '/v1/transactions', '{"isolation":"serializable"}', adminAuth],
  ];
  for (const [method, urlPath, json, auth] of bodies) {
    const res = await call(method, urlPath, { auth, body: withPoison(json) });
    t.equal(res.status, 400, `${method} ${urlPath}: ${res.text.slice(0, 120)}`);
    t.equal(res.json?.code, 'validation_failed');
  }
  // Documents are free-form: there the members are plain data, stored and read back as sent.
  const doc = await call('PUT', '/v1/tables/things/rows/proto', { body: poison });
  t.equal(doc.status, 201);
  t.same((await call('GET', '/v1/tables/things/rows/proto')).json, { ...JSON.parse(poison), id: 'proto' });
  t.equal((await call('PATCH', '/v1/tables/things/rows/proto', { body: '{"__proto__":{"more":1}}' })).status, 200);
  const where = await call('POST', '/v1/query', { body: { table: 'things', where: { '__proto__.polluted': true, constructor: { $exists: true } } } });
  t.same(where.json.rows.map((row: { id: string }) => row.id), ['proto'], 'queried as plain paths');
  const protoOperand = await call('POST', '/v1/query', { body: '{"table":"things","where":{"v":{"__proto__":1}}}' });
  t.ok(protoOperand.status === 200 || protoOperand.status === 400, `an object operand named __proto__: ${protoOperand.status}`);
  // Had any of it reached a prototype, roles would be polluted: the reader is still a reader.
  t.equal((await call('GET', '/v1/admin/users', { auth: reader })).status, 403);
  t.equal((await call('POST', '/v1/auth/token', { auth: false, body: { username: 'rita', password: 'rita-password' } })).status, 200);
});

t.test('huge and deeply nested bodies are refused with 4xx, unauthenticated ones before they are read', async (t) => {
  // Announced sizes: refused from the headers, before a byte of the body is read (raw, so no client chokes on it).
  const announced = (auth: string | null, bytes: number) =>
    raw(
      `PUT /v1/tables/things/rows/big HTTP/1.1\r\nHost: x\r\n${auth === null ? '' : `Authorization: ${auth}\r\n`}` +
        `Content-Type: application/json\r\nContent-Length: ${bytes}\r\nConnection: close\r\n\r\n{"v":"`,
      3000,
    );
  t.match(await announced(adminAuth, 9 * 1024 * 1024), /^HTTP\/1\.1 413 /, 'a body announced past 8 MiB');
  t.match(await announced(null, 1024 * 1024), /^HTTP\/1\.1 401 /, 'an unauthenticated body is not waited for');
  const chunked = await raw(
    `PUT /v1/tables/things/rows/c HTTP/1.1\r\nHost: x\r\nAuthorization: ${adminAuth}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n` +
      `${(8 * 1024 * 1024 + 10).toString(16)}\r\n{"v":"${'a'.repeat(8 * 1024 * 1024)}"}\r\n0\r\n\r\n`,
  );
  t.match(chunked, /^HTTP\/1\.1 413 /, 'a chunked body past the limit');
  for (const [label, body] of [
    ['deep arrays', '['.repeat(100_000) + ']'.repeat(100_000)],
    ['deep objects', '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000)],
    ['deep query', JSON.stringify({ table: 'things', where: JSON.parse('{"$and":['.repeat(200) + '{}' + ']}'.repeat(200)) })],
    ['a huge number', '{"v":1' + '0'.repeat(400) + '}'],
  ] as const) {
    const target = label === 'deep query' ? '/v1/query' : '/v1/tables/things/rows/deep';
    const res = await call(label === 'deep query' ? 'POST' : 'PUT', target, { body });
    t.equal(res.status, 400, `${label}: ${res.text.slice(0, 100)}`);
  }
  const headers = await raw(`GET /v1/tables HTTP/1.1\r\nHost: x\r\nX-Big: ${'h'.repeat(32 * 1024)}\r\n\r\n`);
  t.equal(parseResponses(headers)[0]?.status, 400, 'headers past 16 KiB');
});

t.test('slow-loris: a request trickling in is cut off by the request timeout while others are served', async (t) => {
  const url = new URL(server.url);
  const trickle = (head: string, then: string): Promise<{ closed: boolean; text: string }> =>
    new Promise((resolve) => {
      const socket = net.connect(Number(url.port), url.hostname);
      let text = '';
      let sent = 0;
      socket.setEncoding('latin1').on('data', (chunk: string) => (text += chunk));
      socket.on('connect', () => socket.write(head));
      // One byte every 100 ms, for at most 20 s: the server's 500 ms timeout must end it long before.
      const timer = setInterval(() => {
        if (sent >= 200) {
          clearInterval(timer);
          socket.destroy();
          resolve({ closed: false, text });
        } else if (!socket.destroyed) socket.write(then[sent++ % then.length]!);
      }, 100);
      socket.on('close', () => {
        clearInterval(timer);
        answers.push(text);
        resolve({ closed: true, text });
      });
      socket.on('error', () => undefined);
    });
  const slowHeaders = trickle('GET /v1/tables HTTP/1.1\r\nHost: x\r\n', 'X-Slow: aaaaaaaaaaaaaaaaaaaa\r\n');
  const slowBody = trickle(
    `PUT /v1/tables/things/rows/slow HTTP/1.1\r\nHost: x\r\nAuthorization: ${adminAuth}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"v":"`,
    'aaaaaaaaaa',
  );
  t.equal((await call('GET', '/v1/tables')).status, 200, 'others are served meanwhile');
  for (const [label, result] of [['slow headers', await slowHeaders], ['slow body', await slowBody]] as const) {
    t.ok(result.closed, `${label}: the server closed the connection`);
    t.match(result.text, /^HTTP\/1\.1 (400|408)/, `${label}: ${result.text.split('\r\n')[0]}`);
  }
  t.equal((await call('GET', '/v1/tables/things/rows/slow')).status, 404, 'the slow write never happened');
});

t.test('no answer of this suite carries a stack trace, a server path or a 5xx', async (t) => {
  t.ok(answers.length > 50, `${answers.length} answers`);
  const dataDir = server.dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  for (const text of answers) {
    t.notMatch(text, new RegExp(`\\n\\s+at |node_modules|/dist/src/|${dataDir}`), text.slice(0, 80));
    t.notMatch(text, /^HTTP\/1\.1 5\d\d/m);
    t.notMatch(text, /"status":5\d\d/);
  }
});

t.test('--tls-min-version TLSv1.3 refuses a TLS 1.2 client; --tls files refuses a key that is not the certificate\'s', async (t) => {
  const strict = await startServer({ args: ['--tls', 'self-signed', '--tls-min-version', 'TLSv1.3', '--log-level', 'warn'] });
  t.teardown(() => strict.kill());
  const { hostname, port } = new URL(strict.url);
  const handshake = (maxVersion: tls.SecureVersion): Promise<string> =>
    new Promise((resolve) => {
      const socket = tls.connect({ host: hostname, port: Number(port), rejectUnauthorized: false, maxVersion }, () => {
        resolve(socket.getProtocol() ?? 'none');
        socket.end();
      });
      socket.on('error', (error) => resolve(`refused: ${(error as NodeJS.ErrnoException).code}`));
    });
  t.match(await handshake('TLSv1.2'), /^refused/);
  t.equal(await handshake('TLSv1.3'), 'TLSv1.3');
  t.equal((await strict.request('GET', '/healthz')).status, 200);

  const dir = makeTempDir();
  const { generate } = await import('selfsigned');
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], { keyType: 'ec', curve: 'P-256', algorithm: 'sha256' });
  fs.writeFileSync(path.join(dir, 'a.crt'), pems.cert);
  fs.writeFileSync(path.join(dir, 'a.key'), pems.private);
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' });
  fs.writeFileSync(path.join(dir, 'b.key'), other);
  fs.writeFileSync(path.join(dir, 'junk.key'), 'not a key');
  const tlsFiles = (key: string) => ['--tls', 'files', '--tls-cert', path.join(dir, 'a.crt'), '--tls-key', path.join(dir, key)];
  const mismatched = spawnServer({ args: tlsFiles('b.key') });
  t.equal((await mismatched.exited).code, 2);
  t.match(mismatched.stderr(), /--tls-key: .*b\.key is not the private key of the certificate/);
  const junk = spawnServer({ args: tlsFiles('junk.key') });
  t.equal((await junk.exited).code, 2);
  t.match(junk.stderr(), /--tls-key: .*junk\.key holds no PEM private key/);
  const matching = await startServer({ args: [...tlsFiles('a.key'), '--log-level', 'warn'] });
  t.teardown(() => matching.kill());
  t.match(matching.url, /^https:/);
});

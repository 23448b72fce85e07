// A request that reaches the server after SIGTERM, on a connection kept alive by a request still in flight, is
// answered like every other error: a 503 unavailable problem with Retry-After and the usual headers; the in-flight
// request still finishes, the refused one changes nothing, and the process exits 0.

import net from 'node:net';
import t from 'tap';
import { parseResponses } from '../helpers/raw-http.js';
import { sleep, startServer } from '../helpers/server.js';

/** Resolves once `predicate` holds for the server's stdout, polling briefly. */
async function waitForOutput(stdout: () => string, predicate: RegExp, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate.test(stdout())) {
    if (Date.now() > deadline) throw new Error(`no ${predicate} in the server's output`);
    await sleep(10);
  }
}

t.test('a request arriving during shutdown on a kept-alive connection is a 503 unavailable problem', async (t) => {
  const server = await startServer();
  t.teardown(() => server.kill());
  const created = await server.request('POST', '/v1/tables', { body: { name: 'things', primaryKey: 'id' } });
  t.equal(created.status, 201, created.text);

  const url = new URL(server.url);
  const socket = net.connect(Number(url.port), url.hostname);
  t.teardown(() => socket.destroy());
  let received = '';
  const closed = new Promise<void>((resolve, reject) => {
    socket.setEncoding('utf8').on('data', (chunk: string) => (received += chunk));
    socket.on('close', () => resolve());
    socket.on('error', reject);
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no end of answer; so far: ${received}`)));
  });
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));

  // The first request is in flight when the signal comes: its head and half its body are sent.
  const body = JSON.stringify({ id: 'first', v: 'in flight' });
  socket.write(
    [
      'PUT /v1/tables/things/rows/first HTTP/1.1',
      `Host: ${url.host}`,
      `Authorization: ${server.auth}`,
      'Content-Type: application/json',
      `Content-Length: ${Buffer.byteLength(body)}`,
      '',
      body.slice(0, 10),
    ].join('\r\n'),
  );
  await sleep(200);
  server.proc.kill('SIGTERM');
  await waitForOutput(server.stdout, /"msg":"stopping"/);
  await sleep(100);

  // The rest of the first body and, on the same connection, a second request that arrives after closing began.
  const second = JSON.stringify({ id: 'second' });
  socket.write(
    [
      body.slice(10) + 'PUT /v1/tables/things/rows/second HTTP/1.1',
      `Host: ${url.host}`,
      `Authorization: ${server.auth}`,
      'X-Request-Id: late-1',
      'Content-Type: application/json',
      `Content-Length: ${Buffer.byteLength(second)}`,
      '',
      second,
    ].join('\r\n'),
  );
  await closed;

  const [first, late, ...more] = parseResponses(received);
  t.equal(first?.status, 201, `the in-flight request finished: ${first?.body}`);
  t.same(more, [], 'two answers, no more');
  t.equal(late?.status, 503, `the late request is refused: ${late?.body}`);
  t.match(late?.headers['content-type'], /^application\/problem\+json/, 'problem+json');
  const problem = JSON.parse(late?.body ?? '{}');
  t.match(problem, { status: 503, code: 'unavailable', type: 'urn:driftdb:problem:unavailable', title: 'Unavailable' });
  t.type(problem.detail, 'string');
  t.match(late?.headers['retry-after'], /^\d+$/, 'Retry-After in seconds');
  t.equal(late?.headers['x-content-type-options'], 'nosniff', 'the security headers');
  t.ok(late?.headers['content-security-policy'], 'the security headers');
  t.equal(late?.headers['x-request-id'], 'late-1', 'the request id');
  t.equal(late?.headers.connection, 'close', 'the connection is not kept');

  const { code } = await server.exited;
  t.equal(code, 0, 'exit code 0');

  // The refused write was not applied; the in-flight one was.
  const again = await startServer({ dataDir: server.dataDir });
  t.teardown(() => again.kill());
  t.equal((await again.request('GET', '/v1/tables/things/rows/first')).status, 200, 'the in-flight write is durable');
  t.equal((await again.request('GET', '/v1/tables/things/rows/second')).status, 404, 'the refused write did nothing');
  t.equal(await again.stop(), 0);
});

// Pipelined requests on one TLS connection (writes that wait for the log, then reads that do not), and many
// connections at once: every answer leaves complete and in order.

import tls from 'node:tls';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { parseResponses, type RawResponse } from '../helpers/raw-http.js';
import { startServer } from '../helpers/server.js';

function rawRequest(method: string, target: string, auth: string, body?: unknown): string {
  const payload = body === undefined ? '' : JSON.stringify(body);
  const head = [`${method} ${target} HTTP/1.1`, 'Host: 127.0.0.1', `Authorization: ${auth}`];
  if (body !== undefined) head.push('Content-Type: application/json', `Content-Length: ${Buffer.byteLength(payload)}`);
  return `${head.join('\r\n')}\r\n\r\n${payload}`;
}

/** Writes `requests` pipelined on one TLS connection and resolves with the answers, once all have arrived. */
async function pipelined(socket: tls.TLSSocket, requests: string[]): Promise<RawResponse[]> {
  let received = '';
  return new Promise<RawResponse[]>((resolve, reject) => {
    const settle = (finish: () => void): void => {
      socket.off('data', onData).off('error', onError).setTimeout(0);
      finish();
    };
    const onError = (error: Error): void => settle(() => reject(error));
    const onData = (chunk: string): void => {
      received += chunk;
      let answers: RawResponse[] = [];
      try {
        answers = parseResponses(received);
      } catch {
        return; // An answer still arriving: wait for more bytes.
      }
      if (answers.length >= requests.length) settle(() => resolve(answers));
    };
    socket.on('data', onData).on('error', onError);
    socket.setTimeout(15_000, () => onError(new Error(`stalled after ${received.length} bytes`)));
    socket.write(requests.join(''));
  });
}

// RFC 9112 §9.3.2: a client pipelines only after its non-idempotent requests are answered; PUT and GET are idempotent,
// but a GET pipelined behind a PUT of the same key may run before that PUT commits (Node answers in order, yet
// handles requests as they arrive), so the reads go in a second burst.
t.test('pipelined writes, then pipelined reads, on one HTTPS connection are all answered, in order', async (t) => {
  const server = await startServer({ args: ['--tls', 'self-signed', '--log-level', 'warn'] });
  t.teardown(() => server.kill());
  t.equal((await server.request('POST', '/v1/tables', { body: { name: 'things', primaryKey: 'id' } })).status, 201);

  const url = new URL(server.url);
  const ca = fs.readFileSync(path.join(server.dataDir, 'tls', 'cert.pem'));
  const socket = tls.connect({ host: url.hostname, port: Number(url.port), ca, servername: 'localhost' });
  t.teardown(() => socket.destroy());
  socket.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));

  const count = 40;
  const keys = Array.from({ length: count }, (_, i) => `k${i}`);
  const puts = await pipelined(socket, keys.map((key, i) => rawRequest('PUT', `/v1/tables/things/rows/${key}`, server.auth, { n: i })));
  t.equal(puts.length, count, 'one answer per write');
  t.same(new Set(puts.map((a) => a.status)), new Set([201]), 'every write created its row');
  t.same(puts.map((a) => JSON.parse(a.body).key), keys, 'write answers in request order');

  const reads = [...keys.map((key) => rawRequest('GET', `/v1/tables/things/rows/${key}`, server.auth)), rawRequest('GET', '/v1/tables/things/rows?limit=1000', server.auth)];
  const gets = await pipelined(socket, reads);
  t.equal(gets.length, count + 1, 'one answer per read');
  t.same(gets.slice(0, count).map((a) => JSON.parse(a.body)), keys.map((id, n) => ({ id, n })), 'read answers in request order');
  t.same(gets.slice(0, count).map((a) => a.headers.etag), puts.map((a) => a.headers.etag), 'each read carries the version its write made');
  t.equal((JSON.parse(gets[count]!.body) as { rows: unknown[] }).rows.length, count, 'the page sees every write');
});

t.test('concurrent connections all get their own answers', async (t) => {
  const server = await startServer({ args: ['--tls', 'self-signed', '--log-level', 'warn'] });
  t.teardown(() => server.kill());
  t.equal((await server.request('POST', '/v1/tables', { body: { name: 'things', primaryKey: 'id' } })).status, 201);
  const count = 200;
  const writes = await Promise.all(Array.from({ length: count }, (_, i) => server.request('PUT', `/v1/tables/things/rows/c${i}`, { body: { i } })));
  t.same(new Set(writes.map((w) => w.status)), new Set([201]), 'every write created its row');
  const reads = await Promise.all(Array.from({ length: count }, (_, i) => server.request('GET', `/v1/tables/things/rows/c${i}`)));
  t.ok(reads.every((r, i) => r.status === 200 && JSON.parse(r.text).i === i), 'every read answered its own key');
});

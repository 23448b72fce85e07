// A change stream never holds a backlog for its client: it writes the next block of events only while the client's
// socket takes it, so what waits in the server for a client that stopped reading is at most one block (or one commit
// larger than a block) beyond the socket's buffer, however far behind the client is, whether its blocks are its own or
// shared with other streams. Measured in-process (the response's buffered bytes), over a real socket and a real
// database.

import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { openDatabase } from '../../src/engine/index.js';
import { ChangeService } from '../../src/service/changes.js';

t.test('a stream catching up for a client that does not read buffers at most one block past its socket', async (t) => {
  const db = await openDatabase({ dataDir: t.testdir() });
  t.teardown(() => db.close());
  await db.createTable({ name: 'big', primaryKey: 'id' });
  const docChars = 256 * 1024;
  for (let i = 0; i < 40; i++) await db.put({ table: 'big', key: `k${i}`, doc: { pad: 'x'.repeat(docChars) } });

  const changes = new ChangeService(() => db, { bufferCommits: 1_000_000, flushMs: 0 });
  let response: http.ServerResponse | undefined;
  const server = http.createServer((_req, res) => {
    response = res;
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    changes.stream(res, { since: 0, tables: null });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  t.teardown(() => changes.closeAll());

  // A client that sends its request and never reads a byte of the answer.
  const socket = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
  socket.pause();
  t.teardown(() => socket.destroy());
  socket.write('GET /v1/changes HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n');
  while (response === undefined || !response.writableNeedDrain) await new Promise((resolve) => setTimeout(resolve, 20));

  const bound = response.writableHighWaterMark + 2 * docChars;
  t.ok(response.writableLength <= bound, `buffered ${response.writableLength} bytes, at most ${bound}`);
  // More commits while the socket stays full add nothing to the server's buffer.
  for (let i = 0; i < 10; i++) await db.put({ table: 'big', key: `more${i}`, doc: { pad: 'y'.repeat(docChars) } });
  t.ok(response.writableLength <= bound, `still ${response.writableLength} bytes, at most ${bound}`);
});

t.test('streams sent shared blocks each buffer at most one block past their sockets, and more commits add nothing', async (t) => {
  const db = await openDatabase({ dataDir: t.testdir() });
  t.teardown(() => db.close());
  await db.createTable({ name: 'big', primaryKey: 'id' });
  const since = db.durableSeq;
  const changes = new ChangeService(() => db, { bufferCommits: 1_000_000, flushMs: 0 });
  const responses: http.ServerResponse[] = [];
  const server = http.createServer((_req, res) => {
    responses.push(res);
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    changes.stream(res, { since, tables: new Set(['big']) });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  t.teardown(() => changes.closeAll());

  // Three clients at the same seq on the same table (one view: their blocks are shared), none reading a byte.
  for (let i = 0; i < 3; i++) {
    const socket = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
    socket.pause();
    t.teardown(() => socket.destroy());
    socket.write('GET /v1/changes HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n');
  }
  while (responses.length < 3) await new Promise((resolve) => setTimeout(resolve, 20));
  const docChars = 256 * 1024;
  for (let i = 0; !responses.every((res) => res.writableNeedDrain); i++) {
    if (i === 1000) throw new Error('the sockets never filled');
    await db.put({ table: 'big', key: `k${i}`, doc: { pad: 'x'.repeat(docChars) } });
  }
  const bound = responses[0]!.writableHighWaterMark + 2 * docChars;
  for (const res of responses) t.ok(res.writableLength <= bound, `buffered ${res.writableLength} bytes, at most ${bound}`);
  for (let i = 0; i < 10; i++) await db.put({ table: 'big', key: `more${i}`, doc: { pad: 'y'.repeat(docChars) } });
  for (const res of responses) t.ok(res.writableLength <= bound, `still ${res.writableLength} bytes, at most ${bound}`);
});

// Durability through the whole stack: 32 concurrent writers hit the real server, it is SIGKILLed mid-flight, and
// after a restart on the same data dir every acknowledged write (a 2xx received) is there with its seq as ETag.

import t from 'tap';
import { sleep, startServer, type TestServer } from '../helpers/server.js';

const writers = 32;
const writePhaseMs = 1500;

interface Ack {
  key: string;
  seq: number;
  doc: Record<string, unknown>;
}

/** One writer: PUTs fresh keys until a request fails (the server died under it); answers what was acknowledged. */
async function writer(server: TestServer, id: number, stop: { now: boolean }): Promise<Ack[]> {
  const acks: Ack[] = [];
  for (let i = 0; !stop.now; i++) {
    const key = `w${id}-${i}`;
    const doc = { id: key, writer: id, i, note: `written by ${id}` };
    let response;
    try {
      response = await server.request('PUT', `/v1/tables/crash/rows/${key}`, { body: doc, timeoutMs: 5000 });
    } catch {
      return acks;
    }
    if (response.status === 200 || response.status === 201) {
      acks.push({ key, seq: response.json.seq, doc });
    } else if (response.status !== 503) {
      throw new Error(`unexpected answer ${response.status}: ${response.text}`);
    }
  }
  return acks;
}

t.test('every write acknowledged before a SIGKILL is readable after restart, with its acknowledged seq', async (t) => {
  const first = await startServer();
  t.teardown(() => first.kill());
  const created = await first.request('POST', '/v1/tables', { body: { name: 'crash', primaryKey: 'id' } });
  t.equal(created.status, 201, created.text);

  const stop = { now: false };
  const running = Array.from({ length: writers }, (_, id) => writer(first, id, stop));
  await sleep(writePhaseMs);
  // Kill while every writer has a request in flight: no graceful anything.
  await first.kill();
  stop.now = true;
  const acks = (await Promise.all(running)).flat();
  t.ok(acks.length >= writers, `writes were acknowledged before the kill (${acks.length})`);
  t.equal(new Set(acks.map((ack) => ack.seq)).size, acks.length, 'each autocommit write got its own seq');

  const second = await startServer({ dataDir: first.dataDir });
  t.teardown(() => second.kill());
  const missing: string[] = [];
  const wrong: string[] = [];
  const queue = [...acks];
  await Promise.all(
    Array.from({ length: writers }, async () => {
      for (let ack = queue.pop(); ack !== undefined; ack = queue.pop()) {
        const read = await second.request('GET', `/v1/tables/crash/rows/${ack.key}`);
        if (read.status !== 200) missing.push(`${ack.key} (seq ${ack.seq}): ${read.status}`);
        else if (read.headers.etag !== `"${ack.seq}"` || JSON.stringify(read.json) !== JSON.stringify(ack.doc)) {
          wrong.push(`${ack.key}: etag ${read.headers.etag} for seq ${ack.seq}, doc ${read.text}`);
        }
      }
    }),
  );
  t.same(missing, [], 'no acknowledged write is missing');
  t.same(wrong, [], 'each reads back as acknowledged');
  const stats = await second.request('GET', '/v1/admin/stats');
  t.ok(stats.json.seq >= Math.max(...acks.map((ack) => ack.seq)), 'the recovered seq covers every acknowledgement');
});

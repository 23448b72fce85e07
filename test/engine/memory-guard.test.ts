// The memory guard: at the limit writes are refused (naming the limit) and reads go on; garbage is collected before
// refusing; writes resume only once use falls clearly below the limit.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { openDatabase } from '../../src/engine/index.js';
import { MemoryGuard } from '../../src/engine/memory-guard.js';
import { MiB } from '../../src/limits.js';

function clock(): { now: () => number; advance(ms: number): void } {
  let ms = 0;
  return { now: () => ms, advance: (by) => void (ms += by) };
}

t.test('refuses at the limit, names it, and resumes below nine tenths of it', async (t) => {
  let used = 50 * MiB;
  const time = clock();
  const changes: boolean[] = [];
  const guard = new MemoryGuard({
    limitBytes: 100 * MiB,
    limitName: '--memory-limit-mb 100',
    heapUsed: () => used,
    collect: null,
    now: time.now,
    onChange: (refusing) => changes.push(refusing),
  });
  t.equal(guard.refusal(), null);
  used = 100 * MiB;
  time.advance(20);
  t.match(guard.refusal(), /--memory-limit-mb 100.*100 MiB of heap in use.*reads go on/);
  used = 95 * MiB;
  time.advance(20);
  t.not(guard.refusal(), null, 'still refused just below the limit');
  used = 89 * MiB;
  time.advance(20);
  t.equal(guard.refusal(), null, 'accepted again below 90%');
  t.same(changes, [true, false]);
});

t.test('collects garbage before refusing: a heap full of garbage is not full', async (t) => {
  let used = 120 * MiB;
  let collections = 0;
  const guard = new MemoryGuard({
    limitBytes: 100 * MiB,
    heapUsed: () => used,
    collect: () => {
      collections++;
      used = 40 * MiB;
    },
    now: clock().now,
  });
  t.equal(guard.refusal(), null);
  t.equal(collections, 1);
});

t.test('samples at most every few milliseconds', async (t) => {
  let samples = 0;
  const time = clock();
  const guard = new MemoryGuard({ limitBytes: 100 * MiB, heapUsed: () => (samples++, 0), collect: null, now: time.now });
  for (let i = 0; i < 1000; i++) guard.refusal();
  t.equal(samples, 1);
  time.advance(10);
  guard.refusal();
  t.equal(samples, 2);
});

t.test('a database at its memory limit refuses writes with 503 and keeps answering reads', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'driftdb-memory-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  let db = await openDatabase({ dataDir: dir });
  await db.createTable({ name: 't', primaryKey: 'id' });
  await db.put({ table: 't', key: 'a', doc: { id: 'a' } });
  await db.close();
  // A limit of one MiB: any real process is past it.
  db = await openDatabase({ dataDir: dir, memoryLimitBytes: MiB, memoryLimitName: '--memory-limit-mb 1' });
  t.teardown(() => db.close());
  await t.rejects(db.put({ table: 't', key: 'b', doc: { id: 'b' } }), { code: 'unavailable', message: /--memory-limit-mb 1/ });
  t.throws(() => db.begin(), { code: 'unavailable' });
  t.same(db.get({ table: 't', key: 'a' }).doc, { id: 'a' }, 'reads go on');
  const health = db.health();
  t.equal(health.writable, false);
  t.match(health.reason, /memory limit/);
  t.same(await db.checkpoint(), { seq: 2 }, 'a checkpoint still runs: it makes the next restart cheaper');
});

// The engine's metrics port and its recovery progress: each EngineObserver callback fires for the event it names,
// and a replay long enough logs how far it got, without any clock in the assertions.

import t from 'tap';
import { openDatabase, type EngineObserver } from '../../src/engine/index.js';

interface Calls {
  groups: Array<{ records: number; bytes: number; syncSeconds: number }>;
  commits: number[];
  lockWaits: number;
  conflicts: string[];
  checkpoints: Array<{ seq: number; bytes: number; seconds: number }>;
}

function recordingObserver(): { observer: EngineObserver; calls: Calls } {
  const calls: Calls = { groups: [], commits: [], lockWaits: 0, conflicts: [], checkpoints: [] };
  return {
    calls,
    observer: {
      logGroupSynced: (group) => calls.groups.push(group),
      committed: (commit) => calls.commits.push(commit.rows),
      lockWaitStarted: () => calls.lockWaits++,
      conflict: (code) => calls.conflicts.push(code),
      checkpointWritten: (checkpoint) => calls.checkpoints.push(checkpoint),
    },
  };
}

t.test('the observer hears of every group, commit, lock wait, conflict and checkpoint', async (t) => {
  const { observer, calls } = recordingObserver();
  const db = await openDatabase({ dataDir: t.testdir(), observer, lockTimeoutMs: 60_000 });
  t.teardown(() => db.close());
  await db.createTable({ name: 'kv', primaryKey: 'k' });
  await Promise.all(Array.from({ length: 50 }, (_, i) => db.put({ table: 'kv', key: `k${i}`, doc: { v: i } })));
  t.same(calls.commits, [0, ...Array(50).fill(1)], 'a table creation writes no row, each put one');
  t.equal(calls.groups.reduce((sum, g) => sum + g.records, 0), 51, 'every record was in one synced group');
  t.ok(calls.groups.length < 51, `concurrent puts shared groups (${calls.groups.length} groups)`);
  t.equal(calls.groups.reduce((sum, g) => sum + g.bytes, 0), db.stats().logBytes, 'group bytes add up to the log');
  t.ok(calls.groups.every((g) => g.syncSeconds >= 0));

  const holder = db.begin({ isolation: 'read_committed' });
  await db.put({ table: 'kv', key: 'k1', doc: { v: 'held' }, tx: holder });
  const waiter = db.put({ table: 'kv', key: 'k1', doc: { v: 'waits' } });
  t.equal(calls.lockWaits, 1, 'the autocommit write waits for the lock, synchronously counted');
  await holder.commit();
  await waiter;

  const reader = db.begin({ isolation: 'serializable' });
  db.get({ table: 'kv', key: 'k2', tx: reader });
  await db.put({ table: 'kv', key: 'k2', doc: { v: 'changed' } });
  await db.put({ table: 'kv', key: 'k3', doc: { v: 'mine' }, tx: reader });
  await t.rejects(reader.commit(), { code: 'serialization_failure' });
  t.same(calls.conflicts, ['serialization_failure']);

  await db.checkpoint();
  t.equal(calls.checkpoints.length, 1);
  t.equal(calls.checkpoints[0]!.seq, db.durableSeq);
  t.ok(calls.checkpoints[0]!.bytes > 0);
});

t.test('stats count the versions held, across a restart from the log and from a checkpoint', async (t) => {
  const dataDir = t.testdir();
  let db = await openDatabase({ dataDir });
  await db.createTable({ name: 'kv', primaryKey: 'k' });
  await db.put({ table: 'kv', key: 'a', doc: {} });
  await db.patch({ table: 'kv', key: 'a', patch: { x: 1 } });
  await db.delete({ table: 'kv', key: 'a' });
  await db.put({ table: 'kv', key: 'b', doc: {} });
  t.match(db.stats(), { rows: 1, versions: 4 });
  await db.close();
  db = await openDatabase({ dataDir });
  t.match(db.stats(), { rows: 1, versions: 4 }, 'replayed from the log');
  await db.checkpoint();
  await db.close();
  db = await openDatabase({ dataDir });
  t.match(db.stats(), { rows: 1, versions: 4 }, 'loaded from a checkpoint');
  await db.close();
});

t.test('a long replay logs its progress: records replayed, seq, MiB and MiB/s', async (t) => {
  const dataDir = t.testdir();
  const db = await openDatabase({ dataDir });
  await db.createTable({ name: 'kv', primaryKey: 'k' });
  const records = 3000;
  await Promise.all(Array.from({ length: records }, (_, i) => db.put({ table: 'kv', key: `k${i}`, doc: { pad: 'x'.repeat(100) } })));
  await db.close();

  const lines: Array<{ obj: Record<string, unknown>; msg: string | undefined }> = [];
  const logger = { info: (obj: object, msg?: string) => lines.push({ obj: obj as Record<string, unknown>, msg }), warn() {}, error() {} };
  // Interval 0: a progress line at every check (every 1024 records), so the test needs no clock.
  const reopened = await openDatabase({ dataDir, logger, recoveryProgressIntervalMs: 0 });
  t.teardown(() => reopened.close());
  const progress = lines.filter((line) => line.msg === 'recovering').map((line) => line.obj);
  t.equal(progress.length, 2, 'one line per 1024 records replayed');
  t.same(progress.map((p) => p['replayed']), [1024, 2048]);
  for (const p of progress) {
    t.type(p['mib'], 'number');
    t.type(p['mibPerSecond'], 'number');
    t.ok((p['seq'] as number) >= (p['replayed'] as number));
  }
  t.match(lines.find((line) => line.msg === 'recovered')?.obj, { replayed: records + 1 });

  const quiet: string[] = [];
  const again = await openDatabase({ dataDir: t.testdir(), logger: { info: (_o: object, msg?: string) => quiet.push(msg ?? ''), warn() {}, error() {} } });
  await again.close();
  t.notOk(quiet.includes('recovering'), 'a short replay says nothing but "recovered"');
});

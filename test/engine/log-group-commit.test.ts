// Group commit and fail-stop: concurrent appends share writes and fdatasyncs, an append resolves only once
// durable, and after a failed write or sync every append is refused with 'unavailable'.

import t from 'tap';
import * as path from 'node:path';
import { openLog } from '../../src/engine/log/wal.js';
import { nodeFileSystem, type FileSystem } from '../../src/engine/storage/fs.js';
import { faultyFileSystem } from '../helpers/faulty-fs.js';
import { memoryFileSystem } from '../helpers/memory-fs.js';
import { withDatasync } from '../helpers/datasync-fs.js';
import { AssertionError } from '../../src/assert.js';
import { DriftError } from '../../src/errors.js';
import { limits } from '../../src/limits.js';
import type { CommitRecord } from '../../src/engine/types.js';

function record(seq: number): CommitRecord {
  return { seq, ts: 1_700_000_000_000 + seq, changes: [{ kind: 'row', table: 't', key: String(seq), op: 'put', doc: `{"id":"${seq}"}` }] };
}

type SlowSync = FileSystem & {
  syncsInFlight: number;
  maxSyncsInFlight: number;
  /** Manual mode: resolves once `count` syncs have started in all. */
  started(count: number): Promise<void>;
  /** Manual mode: lets sync number `index` (0 = the first started) finish; resolves once it has. */
  release(index: number): Promise<void>;
  /** Manual mode: lets every sync, now and later, finish. */
  releaseAll(): void;
};

/**
 * A FileSystem whose fdatasync takes `delayMs` (or the next of a list of delays) and counts the syncs in flight.
 * 'manual': each sync waits until the test releases it, so a test of overlapping syncs does not depend on how fast a
 * busy machine runs its timers.
 */
function slowSyncFileSystem(inner: FileSystem, delayMs: number | number[] | 'manual'): SlowSync {
  const delays = Array.isArray(delayMs) ? [...delayMs] : null;
  const state = { syncsInFlight: 0, maxSyncsInFlight: 0 };
  const gates: Array<{ open(): void; opened: Promise<void>; done: Promise<void>; finished(): void }> = [];
  const startWaiters: Array<{ count: number; resolve(): void }> = [];
  let allOpen = false;
  const gate = () => {
    let open!: () => void;
    let finished!: () => void;
    const opened = new Promise<void>((resolve) => (open = resolve));
    const done = new Promise<void>((resolve) => (finished = resolve));
    const entry = { open, opened, done, finished };
    gates.push(entry);
    if (allOpen) open();
    for (const waiter of startWaiters.filter((w) => w.count <= gates.length)) {
      startWaiters.splice(startWaiters.indexOf(waiter), 1);
      waiter.resolve();
    }
    return entry;
  };
  const datasync = async (sync: () => Promise<void>): Promise<void> => {
    state.syncsInFlight += 1;
    state.maxSyncsInFlight = Math.max(state.maxSyncsInFlight, state.syncsInFlight);
    if (delayMs === 'manual') {
      const entry = gate();
      await entry.opened;
      try {
        await sync();
      } finally {
        state.syncsInFlight -= 1;
        entry.finished();
      }
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, delays === null ? (delayMs as number) : (delays.shift() ?? 0)));
    await sync();
    state.syncsInFlight -= 1;
  };
  return Object.assign(state, {
    ...withDatasync(inner, datasync),
    started: (count: number) => (gates.length >= count ? Promise.resolve() : new Promise<void>((resolve) => startWaiters.push({ count, resolve }))),
    release: async (index: number) => {
      gates[index]!.open();
      // A sync whose inner call fails still settles its gate: the test sees the failure through the log.
      await gates[index]!.done;
    },
    releaseAll: () => {
      allOpen = true;
      for (const entry of gates) entry.open();
    },
  }) as unknown as SlowSync;
}

/** Lets the event loop turn a few times: long enough for the log to act on what it was given, if it would. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

async function collect(dir: string, fileSystem: FileSystem): Promise<number[]> {
  const seqs: number[] = [];
  const log = await openLog({ dir, afterSeq: 0, onRecord: (r) => seqs.push(r.seq), fileSystem });
  await log.close();
  return seqs;
}

t.test('200 concurrent appends share one write and one fdatasync', async (t) => {
  const dir = path.join(t.testdir(), 'wal');
  const counting = faultyFileSystem(nodeFileSystem);
  const log = await openLog({ dir, afterSeq: 0, onRecord() {}, fileSystem: counting });
  const appends = Array.from({ length: 200 }, (_, index) => log.append(record(index + 1)));
  t.equal(log.lastSeq, 200, 'lastSeq advances synchronously');
  t.equal(log.durableSeq, 0, 'nothing durable before the sync');
  await Promise.all(appends);
  t.equal(log.durableSeq, 200);
  t.equal(counting.counts.writes, 1, 'one write');
  t.equal(counting.counts.datasyncs, 1, 'one fdatasync');
  await log.close();
  t.same(await collect(dir, nodeFileSystem), Array.from({ length: 200 }, (_, index) => index + 1));
});

t.test('appends arriving during an fdatasync are grouped into the next one', async (t) => {
  const dir = path.join(t.testdir(), 'wal');
  const slow = slowSyncFileSystem(nodeFileSystem, 3);
  const counting = faultyFileSystem(slow);
  const log = await openLog({ dir, afterSeq: 0, onRecord() {}, fileSystem: counting });
  const appendersCount = 64;
  const appendsPerAppender = 10;
  const appender = async (): Promise<void> => {
    for (let i = 0; i < appendsPerAppender; i += 1) {
      // Each appender waits a different time, so appends keep arriving while syncs are in flight.
      await new Promise((resolve) => setImmediate(resolve));
      const seq = log.lastSeq + 1;
      await log.append(record(seq));
      t.ok(log.durableSeq >= seq, 'an append resolves only once its record is durable') || t.bailout();
    }
  };
  await Promise.all(Array.from({ length: appendersCount }, appender));
  const total = appendersCount * appendsPerAppender;
  t.equal(log.durableSeq, total);
  t.ok(counting.counts.datasyncs <= total / 8, `${counting.counts.datasyncs} fdatasyncs for ${total} appends`);
  t.equal(counting.counts.writes, counting.counts.datasyncs, 'one write per fdatasync');
  // That they do overlap up to the limit is shown with syncs released by hand (below): how much these timed ones
  // overlap depends on how busy the machine is.
  t.ok(slow.maxSyncsInFlight <= limits.walSyncsInFlightMax, `${slow.maxSyncsInFlight} syncs in flight at most, never more than the limit`);
  await log.close();
  t.equal((await collect(dir, nodeFileSystem)).length, total);
});

t.test('a group is bounded by groupCommitRecordsMax', async (t) => {
  const fileSystem = faultyFileSystem(memoryFileSystem());
  const log = await openLog({ dir: '/data/wal', afterSeq: 0, onRecord() {}, fileSystem });
  const count = limits.groupCommitRecordsMax + 10;
  await Promise.all(Array.from({ length: count }, (_, index) => log.append(record(index + 1))));
  t.equal(fileSystem.counts.datasyncs, 2, 'two groups');
  await log.close();
  t.equal((await collect('/data/wal', fileSystem)).length, count);
});

t.test('an append is pending until its fdatasync completes', async (t) => {
  const dir = path.join(t.testdir(), 'wal');
  const log = await openLog({ dir, afterSeq: 0, onRecord() {}, fileSystem: slowSyncFileSystem(nodeFileSystem, 30) });
  let settled = false;
  const append = log.append(record(1)).then(() => (settled = true));
  await new Promise((resolve) => setTimeout(resolve, 10));
  t.equal(settled, false, 'not acknowledged while the sync runs');
  await append;
  t.equal(settled, true);
  await log.close();
});

t.test('append of a seq other than lastSeq + 1 is a programmer error', async (t) => {
  const log = await openLog({ dir: '/wal', afterSeq: 0, onRecord() {}, fileSystem: memoryFileSystem() });
  t.throws(() => log.append(record(2)), AssertionError);
  await log.append(record(1));
  t.throws(() => log.append(record(1)), AssertionError);
  t.throws(() => log.append({ ...record(2), ts: 0 }), AssertionError, 'ts may not go back');
  t.equal(log.lastSeq, 1);
  await log.close();
});

t.test('close waits for appends in flight and refuses appends after it', async (t) => {
  const fileSystem = memoryFileSystem();
  const log = await openLog({ dir: '/wal', afterSeq: 0, onRecord() {}, fileSystem });
  const pending = [log.append(record(1)), log.append(record(2))];
  await log.close();
  await Promise.all(pending);
  await t.rejects(log.append(record(3)), { code: 'unavailable' });
  t.same(await collect('/wal', fileSystem), [1, 2]);
});

for (const fault of ['failWriteAfter', 'failSyncAfter'] as const) {
  t.test(`fail-stop: after a failed ${fault === 'failWriteAfter' ? 'write' : 'fdatasync'} every append is refused`, async (t) => {
    const dir = path.join(t.testdir(), 'wal');
    const fileSystem = faultyFileSystem(nodeFileSystem);
    const errors: object[] = [];
    const fatal: Error[] = [];
    const log = await openLog({
      dir,
      afterSeq: 0,
      onRecord() {},
      fileSystem,
      logger: { info() {}, warn() {}, error: (o) => errors.push(o) },
      onFatal: (error) => fatal.push(error),
    });
    await log.append(record(1));
    fileSystem.setFaults({ [fault]: 0 });
    const first = log.append(record(2));
    const sameGroup = log.append(record(3));
    await t.rejects(first, { name: 'DriftError', code: 'unavailable' });
    await t.rejects(sameGroup, { code: 'unavailable' });
    t.equal(log.failed, true);
    t.equal(log.durableSeq, 1, 'nothing past the failure counts as durable');
    fileSystem.setFaults({});
    const later = log.append(record(4));
    await t.rejects(later, DriftError, 'still refused after the disk recovers');
    await t.rejects(later, { code: 'unavailable' });
    t.equal(errors.length, 1, 'the failure is logged once');
    await log.close();
    if (fault === 'failWriteAfter') {
      t.same(fatal, [], 'the log was cut back to its last acknowledged record');
      t.same(await collect(dir, nodeFileSystem), [1], 'only the acknowledged record is left: the refused ones never come back');
    } else {
      // Every later sync fails too, so the cut cannot be made durable: the process is told to stop.
      t.equal(fatal.length, 1, 'a cut that cannot be synced is fatal');
      t.same((await collect(dir, nodeFileSystem)).slice(0, 1), [1], 'the acknowledged record is kept');
    }
  });
}

t.test('fail-stop rejects the groups in flight and those queued behind them', async (t) => {
  const faulty = faultyFileSystem(memoryFileSystem(), { failSyncAfter: 0 });
  const slow = slowSyncFileSystem(faulty, 'manual');
  const log = await openLog({ dir: '/wal', afterSeq: 0, onRecord() {}, fileSystem: slow });
  const appends: Promise<unknown>[] = [];
  // Groups large enough to start while another group's sync runs.
  const groupRecords = limits.walOverlapGroupRecordsMin;
  for (let group = 0; group <= limits.walSyncsInFlightMax; group++) {
    for (let i = 0; i < groupRecords; i++) appends.push(log.append(record(group * groupRecords + i + 1)));
    if (group < limits.walSyncsInFlightMax) await slow.started(group + 1);
  }
  await settle();
  t.equal(slow.syncsInFlight, limits.walSyncsInFlightMax, 'the last group waits behind the syncs in flight');
  t.equal(log.failed, false, 'the first sync is still in flight');
  slow.releaseAll();
  const results = await Promise.allSettled(appends);
  t.same(results.map((r) => r.status), appends.map(() => 'rejected'));
  t.equal(faulty.counts.writes, limits.walSyncsInFlightMax, 'the group queued behind the syncs in flight was never written');
  t.equal(log.durableSeq, 0);
  await log.close();
});

t.test('a group whose sync ends first is acknowledged only after every earlier group', async (t) => {
  const dir = path.join(t.testdir(), 'wal');
  // The second group's sync is let finish while the first's still runs.
  const slow = slowSyncFileSystem(nodeFileSystem, 'manual');
  const log = await openLog({ dir, afterSeq: 0, onRecord() {}, fileSystem: slow });
  const settled: number[] = [];
  const first = log.append(record(1)).then(() => settled.push(1));
  await slow.started(1);
  const secondGroup = Array.from({ length: limits.walOverlapGroupRecordsMin }, (_, i) => log.append(record(i + 2)));
  const last = 1 + limits.walOverlapGroupRecordsMin;
  const second = Promise.all(secondGroup).then(() => {
    settled.push(2);
    t.equal(log.durableSeq, last);
  });
  await slow.started(2);
  await slow.release(1);
  await settle();
  t.same(settled, [], 'the second sync is done, but the first is not: nothing is acknowledged');
  t.equal(log.durableSeq, 0);
  slow.releaseAll();
  await Promise.all([first, second]);
  t.same(settled, [1, 2]);
  await log.close();
  t.same(await collect(dir, nodeFileSystem), Array.from({ length: last }, (_, i) => i + 1));
});

t.test('a small group waits for the sync in flight; a large one starts beside it', async (t) => {
  const dir = path.join(t.testdir(), 'wal');
  const slow = slowSyncFileSystem(nodeFileSystem, 'manual');
  const log = await openLog({ dir, afterSeq: 0, onRecord() {}, fileSystem: slow });
  const first = log.append(record(1));
  await slow.started(1);
  const small = log.append(record(2));
  await settle();
  t.equal(slow.syncsInFlight, 1, 'one record does not start a second sync');
  const large = Array.from({ length: limits.walOverlapGroupRecordsMin }, (_, i) => log.append(record(i + 3)));
  await slow.started(2);
  t.equal(slow.syncsInFlight, 2, 'the grown group overlaps the sync in flight');
  slow.releaseAll();
  await Promise.all([first, small, ...large]);
  t.equal(log.durableSeq, 2 + limits.walOverlapGroupRecordsMin);
  await log.close();
});

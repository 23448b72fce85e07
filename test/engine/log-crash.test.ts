// Crash safety on the in-memory FileSystem: after a crash at any moment (with or without a torn last write),
// recovery keeps every acknowledged record, never shows a partial one, and the log accepts appends again.

import t from 'tap';
import fc from 'fast-check';
import { openLog } from '../../src/engine/log/wal.js';
import { memoryFileSystem, type MemoryFileSystem } from '../helpers/memory-fs.js';
import type { CommitRecord } from '../../src/engine/types.js';

function record(seq: number, padBytes: number): CommitRecord {
  const doc = JSON.stringify({ id: seq, pad: 'p'.repeat(padBytes) });
  return { seq, ts: 1_700_000_000_000 + seq, changes: [{ kind: 'row', table: 't', key: String(seq), op: 'put', doc }] };
}

async function recover(fileSystem: MemoryFileSystem, segmentBytesMax: number): Promise<CommitRecord[]> {
  const records: CommitRecord[] = [];
  const log = await openLog({ dir: '/data/wal', afterSeq: 0, onRecord: (r) => records.push(r), fileSystem, segmentBytesMax });
  await log.append(record(log.lastSeq + 1, 1));
  await log.close();
  return records;
}

t.test('a crash at any moment keeps exactly a prefix that includes every acknowledged record', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.record({ count: fc.integer({ min: 1, max: 12 }), pad: fc.integer({ min: 0, max: 200 }), settle: fc.boolean() }), { minLength: 1, maxLength: 8 }),
      fc.integer({ min: 0, max: 40 }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.integer({ min: 300, max: 3000 }),
      async (batches, ticksBeforeCrash, keepFraction, segmentBytesMax) => {
        const fileSystem = memoryFileSystem();
        const log = await openLog({ dir: '/data/wal', afterSeq: 0, onRecord() {}, fileSystem, segmentBytesMax });
        const appended: CommitRecord[] = [];
        let acknowledged = 0;
        for (const batch of batches) {
          const pending: Promise<void>[] = [];
          for (let i = 0; i < batch.count; i += 1) {
            const next = record(log.lastSeq + 1, batch.pad);
            appended.push(next);
            pending.push(log.append(next).then(() => void (acknowledged = Math.max(acknowledged, next.seq))));
          }
          if (batch.settle) await Promise.all(pending);
        }
        for (let tick = 0; tick < ticksBeforeCrash; tick += 1) await Promise.resolve();
        const ackedAtCrash = acknowledged;
        const crashed = fileSystem.crash({ keepUnsyncedBytes: (_file, unsynced) => Math.floor(unsynced * keepFraction) });
        const recovered = await recover(crashed, segmentBytesMax);
        if (recovered.length < ackedAtCrash) throw new Error(`lost acknowledged records: ${recovered.length} < ${ackedAtCrash}`);
        if (JSON.stringify(recovered) !== JSON.stringify(appended.slice(0, recovered.length))) throw new Error('recovered records differ from a prefix of the appended ones');
        await log.close();
      },
    ),
    { numRuns: 150 },
  );
  t.pass('all crash points recovered');
});

t.test('a crash before the new segment name is synced loses no acknowledged record', async (t) => {
  const fileSystem = memoryFileSystem();
  const log = await openLog({ dir: '/data/wal', afterSeq: 0, onRecord() {}, fileSystem, segmentBytesMax: 400 });
  for (let seq = 1; seq <= 20; seq += 1) await log.append(record(seq, 50));
  await log.close();
  const names = await fileSystem.readdir('/data/wal');
  t.ok(names.length > 3, 'rolled over several times');
  const crashed = fileSystem.crash();
  t.same((await crashed.readdir('/data/wal')).sort(), names.sort(), 'every segment name survived');
  t.equal((await recover(crashed, 400)).length, 20);
});

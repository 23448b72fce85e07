// doctor: an offline, read-only check of a data dir that reaches the same verdict as recovery.

import t from 'tap';
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { doctor } from '../../src/engine/log/doctor.js';
import { openLog, CorruptLogError } from '../../src/engine/log/wal.js';
import { checkpointName, writeCheckpoint } from '../../src/engine/log/checkpoint.js';
import { segmentName } from '../../src/engine/log/segment.js';
import { memoryFileSystem, type MemoryFileSystem } from '../helpers/memory-fs.js';
import type { FileSystem } from '../../src/engine/storage/fs.js';
import type { CommitRecord } from '../../src/engine/types.js';

function record(seq: number): CommitRecord {
  return { seq, ts: 1_700_000_000_000 + seq, changes: [{ kind: 'row', table: 't', key: String(seq), op: 'put', doc: `{"id":"${seq}","v":"${'v'.repeat(seq % 40)}"}` }] };
}

async function fillDataDir(dataDir: string, count: number, options: { segmentBytesMax?: number; fileSystem?: FileSystem; checkpointAt?: number } = {}): Promise<void> {
  const log = await openLog({ dir: path.join(dataDir, 'wal'), afterSeq: 0, onRecord() {}, ...options });
  for (let seq = 1; seq <= count; seq += 1) {
    await log.append(record(seq));
    if (seq === options.checkpointAt) {
      await writeCheckpoint({ dir: path.join(dataDir, 'checkpoints'), seq, chunks: ['{"state":"at ' + seq + '"}'], ...(options.fileSystem ? { fileSystem: options.fileSystem } : {}) });
    }
  }
  await log.close();
}

function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const file = path.join(entry.parentPath ?? entry.path, entry.name);
    if (entry.isFile()) out[file] = `${fs.statSync(file).mtimeMs}:${fs.readFileSync(file).toString('base64')}`;
  }
  return out;
}

t.test('a sound data dir is healthy and counted', async (t) => {
  const dataDir = t.testdir();
  await fillDataDir(dataDir, 40, { segmentBytesMax: 1500, checkpointAt: 25 });
  const report = await doctor({ dataDir });
  t.match(report, { healthy: true, records: 40, checkpoints: 1, checkpointSeq: 25, lastSeq: 40, problems: [] });
  t.equal(report.segments, fs.readdirSync(path.join(dataDir, 'wal')).length);
  t.ok(report.segments > 1);
});

t.test('an empty data dir is healthy; a missing one is not', async (t) => {
  const dataDir = t.testdir();
  t.match(await doctor({ dataDir }), { healthy: true, records: 0, segments: 0, checkpoints: 0 });
  t.match(await doctor({ dataDir: path.join(dataDir, 'nope') }), { healthy: false, problems: [{ reason: /does not exist/ }] });
});

t.test('a torn tail is reported but healthy, and doctor does not cut it', async (t) => {
  const dataDir = t.testdir();
  await fillDataDir(dataDir, 5);
  const file = path.join(dataDir, 'wal', segmentName(1));
  const size = fs.statSync(file).size;
  fs.truncateSync(file, size - 5);
  const before = snapshot(dataDir);
  const report = await doctor({ dataDir });
  t.match(report, { healthy: true, records: 4, problems: [{ file, severity: 'tail', reason: /torn tail/ }] });
  t.same(snapshot(dataDir), before, 'nothing modified');
});

t.test('a flipped byte in a middle record is unhealthy, at the offset recovery names', async (t) => {
  const dataDir = t.testdir();
  await fillDataDir(dataDir, 5);
  const file = path.join(dataDir, 'wal', segmentName(1));
  const bytes = fs.readFileSync(file);
  bytes[Math.floor(bytes.length / 2)]! ^= 0x04;
  fs.writeFileSync(file, bytes);
  const before = snapshot(dataDir);
  const report = await doctor({ dataDir });
  t.equal(report.healthy, false);
  t.equal(report.problems[0]?.severity, 'corrupt');
  t.same(snapshot(dataDir), before, 'nothing modified');
  const error = await openLog({ dir: path.join(dataDir, 'wal'), afterSeq: 0, onRecord() {} }).then(
    () => null,
    (e: unknown) => e,
  );
  t.type(error, CorruptLogError);
  t.match(report.problems[0], { file: (error as CorruptLogError).file, offset: (error as CorruptLogError).offset });
  t.equal(report.records, 4, 'the records around the damage are still counted');
});

t.test('a seq gap and a missing segment are unhealthy', async (t) => {
  const dataDir = t.testdir();
  await fillDataDir(dataDir, 30, { segmentBytesMax: 600 });
  const names = fs.readdirSync(path.join(dataDir, 'wal')).sort();
  t.ok(names.length >= 3);
  fs.unlinkSync(path.join(dataDir, 'wal', names[1]!));
  t.match(await doctor({ dataDir }), { healthy: false, problems: [{ file: path.join(dataDir, 'wal', names[2]!), reason: /missing or stray segment/ }] });
});

t.test('a damaged checkpoint is a warning: the server falls back to the log', async (t) => {
  const dataDir = t.testdir();
  await fillDataDir(dataDir, 10, { checkpointAt: 6 });
  const file = path.join(dataDir, 'checkpoints', checkpointName(6));
  fs.truncateSync(file, fs.statSync(file).size - 2);
  t.match(await doctor({ dataDir }), { healthy: true, checkpoints: 1, checkpointSeq: null, problems: [{ file, severity: 'warning' }] });
});

t.test("doctor's verdict always matches recovery's, for random damage", async (t) => {
  const pristine = memoryFileSystem();
  await fillDataDir('/data', 24, { segmentBytesMax: 700, fileSystem: pristine });
  const names = (await pristine.readdir('/data/wal')).sort();
  const damage = fc.record({
    segment: fc.nat({ max: names.length - 1 }),
    kind: fc.constantFrom('flip', 'truncate', 'garbage'),
    at: fc.double({ min: 0, max: 1, noNaN: true }),
    garbage: fc.uint8Array({ minLength: 1, maxLength: 40 }),
  });
  await fc.assert(
    fc.asyncProperty(damage, async ({ segment, kind, at, garbage }) => {
      const fileSystem = pristine.crash();
      const file = `/data/wal/${names[segment]!}`;
      damageFile(fileSystem, file, kind, at, Buffer.from(garbage));
      const report = await doctor({ dataDir: '/data', fileSystem });
      const outcome = await openLog({ dir: '/data/wal', afterSeq: 0, onRecord() {}, fileSystem: fileSystem.crash() }).then(
        async (log) => {
          await log.close();
          return null;
        },
        (e: unknown) => e as CorruptLogError,
      );
      if (report.healthy !== (outcome === null)) throw new Error(`doctor healthy=${report.healthy} but recovery ${outcome ? 'refused' : 'started'}`);
      if (outcome) {
        const first = report.problems.find((p) => p.severity === 'corrupt');
        if (first?.file !== outcome.file || first.offset !== outcome.offset) throw new Error(`doctor names ${JSON.stringify(first)}, recovery ${outcome.message}`);
      }
    }),
    { numRuns: 200 },
  );
  t.pass('verdicts agree');
});

function damageFile(fileSystem: MemoryFileSystem, file: string, kind: string, at: number, garbage: Buffer): void {
  const bytes = fileSystem.peek(file);
  const index = Math.min(bytes.length - 1, Math.floor(at * bytes.length));
  if (kind === 'flip') bytes[index]! ^= 0x20;
  if (kind === 'truncate') return fileSystem.poke(file, bytes.subarray(0, index));
  if (kind === 'garbage') return fileSystem.poke(file, Buffer.concat([bytes, garbage]));
  fileSystem.poke(file, bytes);
}

// Log recovery: torn tails are cut, damage before the tail stops recovery naming file and offset, seq
// continuity holds across segments, and afterSeq skips what a checkpoint already holds.

import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openLog, CorruptLogError, type RecordPlacement, type WriteAheadLog } from '../../src/engine/log/wal.js';
import { decodeFrames, encodeFrame, encodeTextFrame } from '../../src/engine/log/frame.js';
import { encodeRecord, encodeRecordFrame, segmentName } from '../../src/engine/log/segment.js';
import { limits } from '../../src/limits.js';
import type { CommitRecord } from '../../src/engine/types.js';

function record(seq: number, padBytes = 40): CommitRecord {
  const doc = JSON.stringify({ id: seq, pad: 'x'.repeat(padBytes) });
  return { seq, ts: 1_700_000_000_000 + seq, changes: [{ kind: 'row', table: 'items', key: String(seq), op: 'put', doc }] };
}

async function replay(dir: string, afterSeq = 0, segmentBytesMax?: number): Promise<{ log: WriteAheadLog; records: CommitRecord[] }> {
  const records: CommitRecord[] = [];
  const log = await openLog({ dir, afterSeq, onRecord: (r) => records.push(r), ...(segmentBytesMax ? { segmentBytesMax } : {}) });
  return { log, records };
}

async function writeLog(dir: string, count: number, segmentBytesMax?: number): Promise<void> {
  const { log } = await replay(dir, 0, segmentBytesMax);
  const appends: Promise<unknown>[] = [];
  for (let index = 0; index < count; index += 1) appends.push(log.append(record(log.lastSeq + 1)));
  await Promise.all(appends);
  await log.close();
}

/** Replays `dir` and closes the log again, answering the seqs seen. */
async function replaySeqs(dir: string, afterSeq = 0): Promise<number[]> {
  const { log, records } = await replay(dir, afterSeq);
  await log.close();
  return seqs(records);
}

function frameOffsets(buf: Buffer): number[] {
  const offsets: number[] = [];
  for (const read of decodeFrames(buf, 0, limits.recordBytesMax)) if (read.kind === 'frame') offsets.push(read.offset);
  return offsets;
}

function seqs(records: CommitRecord[]): number[] {
  return records.map((r) => r.seq);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, index) => from + index);
}

t.test('appended records replay in order after reopening', async (t) => {
  const dir = path.join(t.testdir(), 'wal');
  await writeLog(dir, 5);
  const { log, records } = await replay(dir);
  t.same(records, range(1, 5).map((seq) => record(seq)));
  t.equal(log.lastSeq, 5);
  t.equal(log.durableSeq, 5);
  t.equal(log.bytes, fs.statSync(path.join(dir, segmentName(1))).size);
  await log.close();
});

t.test('a torn tail at every byte offset of the last record is cut and the log goes on', async (t) => {
  const base = t.testdir();
  const source = path.join(base, 'source');
  await writeLog(source, 5);
  const whole = fs.readFileSync(path.join(source, segmentName(1)));
  const lastStart = frameOffsets(whole)[4]!;
  for (let cut = lastStart; cut < whole.length; cut += 1) {
    const dir = path.join(base, `cut-${cut}`);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, segmentName(1)), whole.subarray(0, cut));
    const warnings: object[] = [];
    const records: CommitRecord[] = [];
    const log = await openLog({ dir, afterSeq: 0, onRecord: (r) => records.push(r), logger: { info() {}, warn: (o) => warnings.push(o), error() {} } });
    t.same(seqs(records), [1, 2, 3, 4], `cut at ${cut}: first four replay`);
    t.equal(fs.statSync(path.join(dir, segmentName(1))).size, lastStart, `cut at ${cut}: file truncated at the torn frame`);
    t.equal(warnings.length, cut > lastStart ? 1 : 0, `cut at ${cut}: warned about the tail`);
    await log.append(record(5));
    await log.close();
    const again = await replay(dir);
    t.same(seqs(again.records), [1, 2, 3, 4, 5], `cut at ${cut}: new append survives`);
    await again.log.close();
    fs.rmSync(dir, { recursive: true });
  }
});

t.test('garbage after the last record is a torn tail', async (t) => {
  const dir = path.join(t.testdir(), 'wal');
  await writeLog(dir, 3);
  fs.appendFileSync(path.join(dir, segmentName(1)), Buffer.from([0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
  const { log, records } = await replay(dir);
  t.same(seqs(records), [1, 2, 3]);
  await log.close();
});

t.test('a flipped byte anywhere in a middle record stops recovery naming file and offset', async (t) => {
  const base = t.testdir();
  const source = path.join(base, 'source');
  await writeLog(source, 5);
  const whole = fs.readFileSync(path.join(source, segmentName(1)));
  const offsets = frameOffsets(whole);
  const middle = offsets[2]!;
  for (let at = middle; at < offsets[3]!; at += 1) {
    const dir = path.join(base, `flip-${at}`);
    fs.mkdirSync(dir);
    const damaged = Buffer.from(whole);
    damaged[at]! ^= 0x10;
    const file = path.join(dir, segmentName(1));
    fs.writeFileSync(file, damaged);
    const error = await replay(dir).then(
      () => null,
      (e: unknown) => e,
    );
    t.type(error, CorruptLogError, `flip at ${at}`);
    t.match(error, { file, offset: middle }, `flip at ${at}: file and offset named`);
    t.same(fs.readFileSync(file), damaged, `flip at ${at}: nothing cut`);
    fs.rmSync(dir, { recursive: true });
  }
});

/** Appends `batches` of records through the real log, each batch concurrently, each awaited before the next. */
async function writeBatches(dir: string, batches: number[][], padBytes: number): Promise<Buffer> {
  const { log } = await replay(dir);
  for (const batch of batches) await Promise.all(batch.map((seq) => log.append(record(seq, padBytes))));
  await log.close();
  return fs.readFileSync(path.join(dir, segmentName(1)));
}

/** Zeroes the bytes of record `index` (0-based), as a page that never reached the disk reads back. */
function zeroRecord(buf: Buffer, index: number): Buffer {
  const offsets = frameOffsets(buf);
  const damaged = Buffer.from(buf);
  damaged.fill(0, offsets[index]!, offsets[index + 1] ?? buf.length);
  return damaged;
}

/**
 * A log of records 1-6 written through the real log, 1-3 acknowledged before 4-6 were written (so 4-6 say they
 * were written after 3 was answered, and 5-6 before 4 was), copied into a new dir with `damage` applied.
 */
async function damagedLog(t: Test, damage: (whole: Buffer, offsets: number[]) => Buffer) {
  const base = t.testdir();
  const whole = await writeBatches(path.join(base, 'source'), [[1, 2, 3], [4, 5, 6]], 1500);
  const offsets = frameOffsets(whole);
  const dir = path.join(base, 'damaged');
  fs.mkdirSync(dir);
  const file = path.join(dir, segmentName(1));
  const damaged = damage(whole, offsets);
  fs.writeFileSync(file, damaged);
  return { dir, file, offsets, damaged };
}

t.test('a power loss that kept a later group in flight but not an earlier one is a torn tail, cut at the damage', async (t) => {
  const { dir, file, offsets } = await damagedLog(t, (whole) => zeroRecord(whole, 3));
  const warnings: Array<{ reason?: string }> = [];
  const records: CommitRecord[] = [];
  const log = await openLog({ dir, afterSeq: 0, onRecord: (r) => records.push(r), logger: { info() {}, warn: (o) => warnings.push(o), error() {} } });
  t.same(seqs(records), [1, 2, 3], 'the acknowledged records replay');
  t.equal(fs.statSync(file).size, offsets[3], 'cut where record 4 starts');
  t.match(warnings, [{ reason: /written before seq 4 was acknowledged/ }]);
  await log.append(record(4));
  await log.close();
  t.same(await replaySeqs(dir), [1, 2, 3, 4], 'the log goes on');
});

t.test('zeroed damage followed by a record written after it was acknowledged is corruption', async (t) => {
  // Record 2 was acknowledged before records 4-6 were written: damage to it is not a torn write.
  const { dir, file, offsets, damaged } = await damagedLog(t, (whole) => zeroRecord(whole, 1));
  await t.rejects(replay(dir), { name: 'CorruptLogError', file, offset: offsets[1] });
  t.same(fs.readFileSync(file), damaged, 'nothing cut');
});

t.test('damage without a zeroed sector is corruption, even among records written before it was acknowledged', async (t) => {
  const { dir, file, offsets } = await damagedLog(t, (whole, at) => {
    const flipped = Buffer.from(whole);
    flipped[at[3]! + 40]! ^= 0x01;
    return flipped;
  });
  await t.rejects(replay(dir), { name: 'CorruptLogError', file, offset: offsets[3] });
});

t.test('records of the first binary format, without an acknowledged seq, still replay', async (t) => {
  const dir = t.testdir();
  // The second format (tag 0xd2): documents without their own crc. The first (0xd1): also without the 8-byte
  // acknowledged seq after ts. Both made from the current encoding of a one-change record.
  const second = (r: CommitRecord): Buffer => {
    const { frame, documentOffsets } = encodeRecord(r, r.seq - 1);
    const payload = frame.subarray(8);
    const crcAt = documentOffsets[0]! - 8 + 4;
    return Buffer.concat([Buffer.from([0xd2]), payload.subarray(1, crcAt), payload.subarray(crcAt + 4)]);
  };
  const first = (r: CommitRecord): Buffer => {
    const payload = second(r);
    return Buffer.concat([Buffer.from([0xd1]), payload.subarray(1, 17), payload.subarray(25)]);
  };
  const frames = [encodeFrame(first(record(1))), encodeFrame(first(record(2))), encodeFrame(second(record(3))), encodeRecordFrame(record(4), 3)];
  fs.writeFileSync(path.join(dir, segmentName(1)), Buffer.concat(frames));
  const placements: RecordPlacement[] = [];
  const records: CommitRecord[] = [];
  const log = await openLog({ dir, afterSeq: 0, onRecord: (r, placement) => (records.push(r), placements.push(placement)) });
  t.same(records, [record(1), record(2), record(3), record(4)]);
  t.same(
    placements.map((p) => p.documentLocations === null),
    [true, true, true, false],
    'documents of the older formats are located by their frame only',
  );
  await log.close();
});

t.test('idempotency entries replay as written: their own change (code 4), the catalog JSON of older logs, or JSON for texts UTF-8 cannot carry', async (t) => {
  const dir = t.testdir();
  const entry = (answer: string) => ({ kind: 'idempotency' as const, user: 'ann', key: 'k-1', fingerprint: 'f'.repeat(43), answer, expiresAt: 1_800_000_000_000 });
  // As the service stores answers now: the body is the text it was sent as, quotes and all.
  const answer = '[201,{"etag":"\\"2\\""}]\n{"key":"a","seq":2}';
  const withEntry = (seq: number, change: ReturnType<typeof entry>): CommitRecord => ({ ...record(seq), changes: [...record(seq).changes, change] });
  const current = encodeRecordFrame(withEntry(2, entry(answer)), 1);
  t.ok(current.includes(Buffer.from(answer, 'utf8')), 'the answer is in the record as it is, not escaped as a JSON string');
  // A record of an older version: the entry as a catalog change (code 3), its answer the JSON object it was then.
  const oldAnswer = JSON.stringify({ status: 201, json: '{"key":"a","seq":3}', headers: { etag: '"3"' } });
  const older = (r: CommitRecord, change: ReturnType<typeof entry>): Buffer => {
    const payload = encodeRecord(r, r.seq - 1).frame.subarray(8);
    const json = Buffer.from(JSON.stringify(change), 'utf8');
    const count = Buffer.alloc(4);
    count.writeUInt32LE(r.changes.length + 1, 0);
    const length = Buffer.alloc(4);
    length.writeUInt32LE(json.length, 0);
    return encodeFrame(Buffer.concat([payload.subarray(0, 25), count, payload.subarray(29), Buffer.from([3]), length, json]));
  };
  const lone = entry('[200]\n{"key":"\ud800"}');
  const frames = [encodeRecordFrame(record(1), 0), current, older(record(3), entry(oldAnswer)), encodeRecordFrame(withEntry(4, lone), 3)];
  fs.writeFileSync(path.join(dir, segmentName(1)), Buffer.concat(frames));
  const { log, records } = await replay(dir);
  await log.close();
  t.same(records, [record(1), withEntry(2, entry(answer)), withEntry(3, entry(oldAnswer)), withEntry(4, lone)]);
  t.equal((records[3]!.changes[1] as { answer: string }).answer, lone.answer, 'a lone surrogate comes back as it was');
});

t.test('damage at the end of a segment that is not the last is corruption', async (t) => {
  const dir = path.join(t.testdir(), 'wal');
  await writeLog(dir, 30, 1024);
  const files = fs.readdirSync(dir).sort();
  t.ok(files.length >= 2, 'several segments');
  const first = path.join(dir, files[0]!);
  const lastFrame = frameOffsets(fs.readFileSync(first)).at(-1);
  fs.truncateSync(first, fs.statSync(first).size - 3);
  await t.rejects(replay(dir, 0, 1024), { name: 'CorruptLogError', file: first, offset: lastFrame });
});

t.test('an empty or missing dir, and empty segment files, open cleanly', async (t) => {
  const base = t.testdir();
  const missing = path.join(base, 'data', 'wal');
  const opened = await replay(missing);
  t.equal(opened.log.lastSeq, 0);
  t.ok(fs.existsSync(missing), 'dir created');
  t.same(fs.readdirSync(missing), [], 'no segment before the first append');
  await opened.log.close();

  fs.writeFileSync(path.join(missing, segmentName(1)), '');
  const withEmpty = await replay(missing);
  t.equal(withEmpty.log.lastSeq, 0);
  await withEmpty.log.append(record(1));
  await withEmpty.log.close();
  t.same(fs.readdirSync(missing), [segmentName(1)], 'the empty segment was used');
  t.same(await replaySeqs(missing), [1]);
});

t.test('an empty last segment after a full one continues the log', async (t) => {
  const dir = path.join(t.testdir(), 'wal');
  await writeLog(dir, 3);
  fs.writeFileSync(path.join(dir, segmentName(4)), '');
  const { log, records } = await replay(dir);
  t.same(seqs(records), [1, 2, 3]);
  await log.append(record(4));
  await log.close();
  t.equal(fs.statSync(path.join(dir, segmentName(4))).size > 0, true, 'record 4 went to segment 4');
  t.same(await replaySeqs(dir), [1, 2, 3, 4]);
});

function writeFrames(file: string, records: CommitRecord[]): number[] {
  const frames = records.map((r) => encodeRecordFrame(r, r.seq - 1));
  fs.writeFileSync(file, Buffer.concat(frames));
  return frameOffsets(Buffer.concat(frames));
}

t.test('a seq gap inside a segment is corruption at the record after the gap', async (t) => {
  const dir = t.testdir();
  const file = path.join(dir, segmentName(1));
  const offsets = writeFrames(file, [record(1), record(2), record(4), record(5)]);
  await t.rejects(replay(dir), { name: 'CorruptLogError', file, offset: offsets[2], reason: /seq 4 where seq 3/ });
});

t.test('a missing segment is corruption', async (t) => {
  const dir = t.testdir();
  writeFrames(path.join(dir, segmentName(1)), [record(1), record(2)]);
  writeFrames(path.join(dir, segmentName(5)), [record(5), record(6)]);
  await t.rejects(replay(dir), { name: 'CorruptLogError', file: path.join(dir, segmentName(5)), offset: 0, reason: /expects 3/ });
});

t.test('a log starting after seq 1 needs a checkpoint covering the records before it', async (t) => {
  const dir = t.testdir();
  writeFrames(path.join(dir, segmentName(5)), [record(5), record(6)]);
  await t.rejects(replay(dir), { name: 'CorruptLogError', reason: /records 1\.\.4 are missing/ });
  const { log, records } = await replay(dir, 4);
  t.same(seqs(records), [5, 6]);
  t.equal(log.lastSeq, 6);
  await log.close();
});

t.test('a segment whose name disagrees with its first record is corruption', async (t) => {
  const dir = t.testdir();
  const file = path.join(dir, segmentName(1));
  writeFrames(file, [record(2), record(3)]);
  await t.rejects(replay(dir), { name: 'CorruptLogError', file, offset: 0 });
});

t.test('a checksummed frame that is not a commit record is corruption', async (t) => {
  const dir = t.testdir();
  const file = path.join(dir, segmentName(1));
  const frames = [encodeRecordFrame(record(1), 0), encodeTextFrame('not json'), encodeRecordFrame(record(3), 2)];
  fs.writeFileSync(file, Buffer.concat(frames));
  await t.rejects(replay(dir), { name: 'CorruptLogError', file, offset: frames[0]!.length, reason: /not a commit record/ });
});

t.test('segments roll over at segmentBytesMax and replay across segments', async (t) => {
  const dir = t.testdir();
  const segmentBytesMax = 1000;
  const { log } = await replay(dir, 0, segmentBytesMax);
  const pending: Promise<unknown>[] = [];
  for (let seq = 1; seq <= 100; seq += 1) {
    pending.push(log.append(record(seq)));
    if (seq % 7 === 0) await Promise.all(pending);
  }
  await Promise.all(pending);
  await log.close();
  const files = fs.readdirSync(dir).sort();
  t.ok(files.length > 5, `${files.length} segments`);
  let expectedFirst = 1;
  for (const name of files) {
    const buf = fs.readFileSync(path.join(dir, name));
    t.ok(buf.length <= segmentBytesMax, `${name} within segmentBytesMax`);
    t.equal(name, segmentName(expectedFirst), 'named after its first record');
    expectedFirst += frameOffsets(buf).length;
  }
  const again = await replay(dir, 0, segmentBytesMax);
  t.same(seqs(again.records), range(1, 100));
  t.equal(again.log.bytes, files.reduce((sum, name) => sum + fs.statSync(path.join(dir, name)).size, 0));
  await again.log.close();
});

t.test('afterSeq skips records a checkpoint holds, across segments', async (t) => {
  const dir = t.testdir();
  await writeLog(dir, 60, 700);
  for (const afterSeq of [0, 1, 37, 59, 60]) {
    const { log, records } = await replay(dir, afterSeq, 700);
    t.same(seqs(records), range(afterSeq + 1, 60), `afterSeq ${afterSeq}`);
    t.equal(log.lastSeq, 60);
    await log.close();
  }
});

t.test('a log that ends before afterSeq is corruption; an empty dir takes afterSeq as its start', async (t) => {
  const base = t.testdir();
  const dir = path.join(base, 'short');
  await writeLog(dir, 3);
  await t.rejects(replay(dir, 10), { name: 'CorruptLogError', reason: /ends at seq 3 but the checkpoint is at seq 10/ });

  const empty = path.join(base, 'empty');
  const { log } = await replay(empty, 10);
  t.equal(log.lastSeq, 10);
  await log.append(record(11));
  await log.close();
  t.same(fs.readdirSync(empty), [segmentName(11)]);
  t.same(await replaySeqs(empty, 10), [11]);
});

t.test('segments wholly below afterSeq are not read at recovery; doctor still finds damage there', async (t) => {
  const dataDir = t.testdir();
  const dir = path.join(dataDir, 'wal');
  await writeLog(dir, 60, 1024);
  const files = fs.readdirSync(dir).sort();
  t.ok(files.length >= 4, `the log rolled into ${files.length} segments`);
  const firstOfLast = Number(files[files.length - 1]!.replace('.wal', ''));
  const first = path.join(dir, files[0]!);
  const bytes = fs.readFileSync(first);
  bytes[20] = bytes[20]! ^ 0xff;
  fs.writeFileSync(first, bytes);
  await t.rejects(replaySeqs(dir, 0), CorruptLogError, 'a full replay meets the damage');
  t.same(await replaySeqs(dir, firstOfLast - 1), range(firstOfLast, 60), 'a checkpoint past it never reads it');
  const { doctor } = await import('../../src/engine/log/doctor.js');
  const report = await doctor({ dataDir });
  t.equal(report.healthy, false, 'doctor reports the damaged segment');
  t.match(report.problems[0], { file: first, severity: 'corrupt' });
});

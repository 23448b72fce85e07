// The records a node streams to a peer catching up (Database.logBatch): the stored frames of a run of seqs, read
// in runs of adjacent frames, across segment boundaries, each checked; a damaged one fails loudly.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { openDatabase } from '../../src/engine/index.js';
import { decodeBatch } from '../../src/engine/log/batch.js';
import { isDriftError } from '../../src/errors.js';
import { limits } from '../../src/limits.js';

t.test('a log batch holds every record of its seqs, as committed, across segments', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'driftdb-log-batch-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  // Small segments, so that the records below span several of them (the log reads the limit when it opens).
  const settable = limits as { segmentBytesMax: number };
  const segmentBytesMax = settable.segmentBytesMax;
  settable.segmentBytesMax = 64 * 1024;
  t.teardown(() => {
    settable.segmentBytesMax = segmentBytesMax;
  });
  const db = await openDatabase({ dataDir: dir });
  t.teardown(() => db.close());
  await db.createTable({ name: 'items', primaryKey: 'id' });
  const first = db.durableSeq + 1;
  const written = new Map<number, { key: string; text: string }>();
  for (let i = 0; i < 400; i++) {
    const key = `k${i % 50}`;
    const doc = { id: key, i, pad: 'x'.repeat((i * 37) % 900) };
    const { seq } = await db.put({ table: 'items', key, doc });
    written.set(seq!, { key, text: JSON.stringify(doc) });
  }
  t.ok(fs.readdirSync(path.join(dir, 'wal')).length > 2, 'the records span several segments');

  for (const [after, max] of [
    [first - 1, 1000],
    [first + 17, 1],
    [first + 100, 250],
  ] as const) {
    const batch = decodeBatch(db.logBatch(after, max)!);
    const last = Math.min(db.durableSeq, after + max);
    t.equal(batch.firstSeq, after + 1);
    t.equal(batch.lastSeq, last);
    const mismatched = batch.records.filter((record) => {
      const expected = written.get(record.seq)!;
      const change = record.changes[0];
      return record.changes.length !== 1 || change?.kind !== 'row' || change.key !== expected.key || JSON.stringify(JSON.parse(change.doc!)) !== expected.text;
    });
    t.same(mismatched, [], `seqs ${after + 1}…${last}: every record as committed`);
  }
  t.equal(db.logBatch(db.durableSeq, 10), null, 'nothing after the durable seq');
});

t.test('a damaged record in the run fails the batch loudly, naming it', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'driftdb-log-batch-rot-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const db = await openDatabase({ dataDir: dir });
  t.teardown(() => db.close());
  await db.createTable({ name: 'items', primaryKey: 'id' });
  const first = db.durableSeq + 1;
  for (let i = 0; i < 20; i++) await db.put({ table: 'items', key: `k${i}`, doc: { id: `k${i}`, marker: `m${String(i).padStart(4, '0')}` } });
  // Rot one byte of the 11th record's document on disk.
  const segment = path.join(dir, 'wal', fs.readdirSync(path.join(dir, 'wal')).sort().at(-1)!);
  const bytes = fs.readFileSync(segment);
  const at = bytes.indexOf('m0010');
  t.ok(at > 0, 'the document is in the segment');
  const handle = fs.openSync(segment, 'r+');
  fs.writeSync(handle, Buffer.from('X'), 0, 1, at);
  fs.closeSync(handle);
  let failure: unknown = null;
  try {
    db.logBatch(first - 1, 100);
  } catch (error) {
    failure = error;
  }
  t.ok(isDriftError(failure) && failure.code === 'internal' && failure.message.includes(`seq ${first + 10}`), `the damaged record is an internal error naming it: ${String(failure)}`);
  t.ok(decodeBatch(db.logBatch(first - 1, 10)!).records.length === 10, 'the records before it still stream');
});

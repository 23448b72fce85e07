// The version store keeps old versions in the log: reads of the past (asOf, history) come from disk, checked by
// their own crc, and must equal an in-memory model across checkpoints and restarts; damage on disk fails loudly,
// for that version only; older record formats are still read.

import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { doctor, openDatabase, type Database, type Doc } from '../../src/engine/index.js';
import { encodeFrame } from '../../src/engine/log/frame.js';
import { encodeRecord, segmentName } from '../../src/engine/log/segment.js';
import type { CommitRecord } from '../../src/engine/types.js';

type Test = Parameters<Parameters<typeof t.test>[0]>[0];

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'driftdb-versions-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A cache of one small document: nearly every read of an old version goes to the log file. */
const tinyCache = { versionCacheCharsMax: 64 };

/** Every key's history as the engine answered each write: (seq, doc or null). */
type ModelHistory = Map<string, Array<{ seq: number; doc: Doc | null }>>;

function modelAt(model: ModelHistory, key: string, seq: number): Doc | null | undefined {
  let found: Doc | null | undefined;
  for (const version of model.get(key) ?? []) if (version.seq <= seq) found = version.doc;
  return found;
}

/** JSON with object members in sorted order: a patch that creates a row puts its key member last. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v,
  );
}

function readAt(db: Database, key: string, seq: number): Doc | null {
  try {
    return db.get({ table: 't', key, asOf: seq }).doc;
  } catch (error) {
    if ((error as { code?: string }).code === 'row_not_found') return null;
    throw error;
  }
}

const step = fc.oneof(
  fc.record({ kind: fc.constant('put' as const), key: fc.constantFrom('a', 'b', 'c', 'd'), n: fc.integer({ min: 0, max: 9 }), pad: fc.nat(300) }),
  fc.record({ kind: fc.constant('patch' as const), key: fc.constantFrom('a', 'b', 'c', 'd'), n: fc.integer({ min: 0, max: 9 }) }),
  fc.record({ kind: fc.constant('delete' as const), key: fc.constantFrom('a', 'b', 'c', 'd') }),
  fc.record({ kind: fc.constant('batch' as const), keys: fc.uniqueArray(fc.constantFrom('a', 'b', 'c', 'd'), { minLength: 1, maxLength: 4 }), n: fc.nat(9) }),
  fc.constant({ kind: 'checkpoint' as const }),
  fc.constant({ kind: 'reopen' as const }),
);

t.test('reads of the past from the log equal the model, across checkpoints and restarts', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 40 }), async (steps) => {
      const dir = mkdtempSync(join(tmpdir(), 'driftdb-versions-'));
      let db = await openDatabase({ dataDir: dir, ...tinyCache });
      try {
        await db.createTable({ name: 't', primaryKey: 'id' });
        const model: ModelHistory = new Map();
        const record = (key: string, seq: number, doc: Doc | null): void => {
          model.set(key, [...(model.get(key) ?? []), { seq, doc }]);
        };
        for (const s of steps) {
          if (s.kind === 'checkpoint') await db.checkpoint();
          else if (s.kind === 'reopen') {
            await db.close();
            db = await openDatabase({ dataDir: dir, ...tinyCache });
          } else if (s.kind === 'put') {
            const doc = { id: s.key, n: s.n, pad: 'x'.repeat(s.pad) };
            const { seq } = await db.put({ table: 't', key: s.key, doc });
            record(s.key, seq!, doc);
          } else if (s.kind === 'patch') {
            const { seq } = await db.patch({ table: 't', key: s.key, patch: { n: s.n } });
            const before = modelAt(model, s.key, seq! - 1) ?? { id: s.key };
            record(s.key, seq!, { ...before, n: s.n });
          } else if (s.kind === 'delete') {
            if (!modelAt(model, s.key, db.durableSeq)) continue;
            const { seq } = await db.delete({ table: 't', key: s.key });
            record(s.key, seq!, null);
          } else {
            const tx = db.begin({ isolation: 'read_committed' });
            for (const key of s.keys) await tx.put({ table: 't', key, doc: { id: key, n: s.n, batch: true } });
            const { seq } = await tx.commit();
            for (const key of s.keys) record(key, seq!, { id: key, n: s.n, batch: true });
          }
        }
        const newest = db.durableSeq;
        for (const [key, versions] of model) {
          for (let seq = 0; seq <= newest; seq++) {
            const expected = modelAt(model, key, seq) ?? null;
            const actual = readAt(db, key, seq);
            if (canonical(actual) !== canonical(expected)) throw new Error(`${key} at ${seq}: ${JSON.stringify(actual)} ≠ ${JSON.stringify(expected)}`);
          }
          const read = db.history({ table: 't', key }).versions;
          const history = read.map((v) => ({ seq: v.seq, doc: v.doc }));
          if (canonical(history) !== canonical(versions)) throw new Error(`history of ${key} differs`);
          // The route answers the stored texts as they are: each must be the JSON of its document.
          if (read.some((v) => v.json !== (v.doc === null ? null : JSON.stringify(v.doc)))) throw new Error(`history of ${key}: a text is not its document's JSON`);
        }
      } finally {
        await db.close();
        rmSync(dir, { recursive: true, force: true });
      }
    }),
    { numRuns: 25 },
  );
  t.pass('every read of the past matched the model');
});

t.test('memory holds the newest documents; older ones are read from the log', async (t) => {
  const dir = tempDir(t);
  const db = await openDatabase({ dataDir: dir, ...tinyCache });
  t.teardown(() => db.close());
  await db.createTable({ name: 't', primaryKey: 'id' });
  for (let n = 0; n < 50; n++) await db.put({ table: 't', key: 'k', doc: { id: 'k', n } });
  const before = db.stats().versionReads;
  t.same(db.get({ table: 't', key: 'k' }).doc, { id: 'k', n: 49 });
  t.equal(db.stats().versionReads, before, 'the newest version is read from memory');
  t.same(db.get({ table: 't', key: 'k', asOf: 10 }).doc, { id: 'k', n: 8 });
  t.ok(db.stats().versionReads > before, 'an old version is read from the log');
  t.equal(db.history({ table: 't', key: 'k' }).versions.length, 50);
  t.equal(db.stats().versions, 50);
});

/** A database with a tiny version cache and a table `t`, whose logged errors are kept. */
async function openLogged(t: Test): Promise<{ dir: string; db: Database; errors: Array<Record<string, unknown>> }> {
  const dir = tempDir(t);
  const errors: Array<Record<string, unknown>> = [];
  const logger = { info() {}, warn() {}, error: (fields: object) => errors.push(fields as Record<string, unknown>) };
  const db = await openDatabase({ dataDir: dir, logger, ...tinyCache });
  t.teardown(() => db.close());
  await db.createTable({ name: 't', primaryKey: 'id' });
  return { dir, db, errors };
}

/** Flips one bit of the first document holding `text` in the only log segment; answers the file and the offset. */
function rot(dir: string, text: string): { file: string; at: number } {
  const wal = join(dir, 'wal');
  const file = join(wal, readdirSync(wal)[0]!);
  const bytes = readFileSync(file);
  const at = bytes.indexOf(Buffer.from(text));
  if (at < 0) throw new Error(`${text} is not in the segment`);
  bytes[at] = bytes[at]! ^ 0x20;
  writeFileSync(file, bytes);
  return { file, at };
}

t.test('a version whose bytes rot on disk fails loudly, names file and offset, and only that version', async (t) => {
  const { dir, db, errors } = await openLogged(t);
  const first = await db.put({ table: 't', key: 'rot', doc: { id: 'rot', text: 'ROTTEN-SOON' } });
  await db.put({ table: 't', key: 'rot', doc: { id: 'rot', text: 'newer' } });
  const other = await db.put({ table: 't', key: 'fine', doc: { id: 'fine', text: 'old and well' } });
  await db.put({ table: 't', key: 'fine', doc: { id: 'fine', text: 'new and well' } });
  const { file, at } = rot(dir, 'ROTTEN-SOON');

  t.throws(() => db.get({ table: 't', key: 'rot', asOf: first.seq! }), { name: 'DriftError', code: 'internal' });
  t.throws(() => db.history({ table: 't', key: 'rot' }), { code: 'internal' });
  const logged = errors.find((e) => e['msg'] === undefined && e['file'] !== undefined) ?? errors[0]!;
  t.equal(logged['file'], file, 'the log names the file');
  t.ok(typeof logged['offset'] === 'number' && (logged['offset'] as number) < at && at - (logged['offset'] as number) < 64, 'and the offset');
  t.same(db.get({ table: 't', key: 'rot' }).doc, { id: 'rot', text: 'newer' }, 'the newest version still reads');
  t.same(db.get({ table: 't', key: 'fine', asOf: other.seq! }).doc, { id: 'fine', text: 'old and well' }, 'other keys read');

  const report = await doctor({ dataDir: dir });
  t.equal(report.healthy, false, 'doctor reports the damage');
  t.ok(report.problems.some((p) => p.file === file && p.severity === 'corrupt'), JSON.stringify(report.problems));
});

t.test('a long history is read in runs, each version checked: one rotted in the middle fails it loudly, and only it', async (t) => {
  const { dir, db, errors } = await openLogged(t);
  const seqs: number[] = [];
  for (let n = 0; n < 60; n++) {
    seqs.push((await db.put({ table: 't', key: 'long', doc: { id: 'long', n, text: n === 30 ? 'ROTTEN-SOON' : 'fine' } })).seq!);
    // Another key between some of them: the runs have gaps.
    if (n % 7 === 0) await db.put({ table: 't', key: 'other', doc: { id: 'other', n } });
  }
  const before = db.history({ table: 't', key: 'long' }).versions;
  t.same(
    before.map((v) => v.doc?.['n']),
    seqs.map((_, n) => n),
    'every version, oldest first',
  );
  const { file, at } = rot(dir, 'ROTTEN-SOON');
  // The cache of 64 characters holds none of them: every old version is read from the file again.
  t.throws(() => db.history({ table: 't', key: 'long' }), { name: 'DriftError', code: 'internal' });
  const logged = errors.find((e) => e['file'] !== undefined)!;
  t.equal(logged['file'], file, 'the log names the file');
  t.ok(typeof logged['offset'] === 'number' && (logged['offset'] as number) < at && at - (logged['offset'] as number) < 64, 'and the offset of that document');
  t.equal(logged['seq'], seqs[30], 'and its seq');
  t.same(db.get({ table: 't', key: 'long', asOf: seqs[29]! }).doc, { id: 'long', n: 29, text: 'fine' }, 'the version before it reads');
  t.same(db.get({ table: 't', key: 'long', asOf: seqs[31]! }).doc, { id: 'long', n: 31, text: 'fine' }, 'and the one after it');
  t.throws(() => db.get({ table: 't', key: 'long', asOf: seqs[30]! }), { code: 'internal' });
});

t.test('a history read that passes an eighth of the version cache keeps the rest of it out', async (t) => {
  const dir = tempDir(t);
  const cache = { versionCacheCharsMax: 16_000 };
  let db = await openDatabase({ dataDir: dir, ...cache });
  await db.createTable({ name: 't', primaryKey: 'id' });
  const hot = await db.put({ table: 't', key: 'hot', doc: { id: 'hot', v: 1 } });
  await db.put({ table: 't', key: 'hot', doc: { id: 'hot', v: 2 } });
  // 100 versions of about 100 characters: 10,000 characters of history, more than 16,000 / 8.
  for (let n = 0; n < 100; n++) await db.put({ table: 't', key: 'long', doc: { id: 'long', n, pad: 'p'.repeat(80) } });
  await db.close();
  db = await openDatabase({ dataDir: dir, ...cache });
  t.teardown(() => db.close());
  t.same(db.get({ table: 't', key: 'hot', asOf: hot.seq! }).doc, { id: 'hot', v: 1 });
  const afterHot = db.stats().versionReads;
  t.equal(db.history({ table: 't', key: 'long' }).versions.length, 100);
  const afterHistory = db.stats().versionReads;
  t.equal(afterHistory - afterHot, 99, 'the history read its old versions from the log');
  t.same(db.get({ table: 't', key: 'hot', asOf: hot.seq! }).doc, { id: 'hot', v: 1 });
  t.equal(db.stats().versionReads, afterHistory, "the hot row's old version is still cached");
  db.history({ table: 't', key: 'long' });
  t.ok(db.stats().versionReads > afterHistory, 'most of the long history was not kept');
});

t.test('documents written in the older record formats are read by whole frame', async (t) => {
  const dir = tempDir(t);
  const walDir = join(dir, 'wal');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(walDir, { recursive: true });
  const ts = 1_700_000_000_000;
  const create: CommitRecord = { seq: 1, ts, changes: [{ kind: 'createTable', name: 't', primaryKey: 'id', indexes: ['n'] }] };
  const row = (seq: number, keys: string[]): CommitRecord => ({
    seq,
    ts: ts + seq,
    changes: keys.map((key) => ({ kind: 'row', table: 't', key, op: 'put', doc: JSON.stringify({ id: key, n: seq }) })),
  });
  // The 0xd2 format: documents as u32 length + text, no crc of their own.
  const older = (r: CommitRecord): Buffer => {
    const { frame, documentOffsets } = encodeRecord(r, r.seq - 1);
    const payload = frame.subarray(8);
    const parts: Buffer[] = [Buffer.from([0xd2])];
    let from = 1;
    for (const offset of documentOffsets) {
      if (offset < 0) continue;
      const crcAt = offset - 8 + 4;
      parts.push(payload.subarray(from, crcAt));
      from = crcAt + 4;
    }
    parts.push(payload.subarray(from));
    return encodeFrame(Buffer.concat(parts));
  };
  writeFileSync(join(walDir, segmentName(1)), Buffer.concat([older(create), older(row(2, ['a', 'b'])), older(row(3, ['a']))]));
  const db = await openDatabase({ dataDir: dir, ...tinyCache });
  t.teardown(() => db.close());
  t.same(db.get({ table: 't', key: 'a', asOf: 2 }).doc, { id: 'a', n: 2 }, 'an old version from a record of two rows');
  t.same(db.history({ table: 't', key: 'a' }).versions.map((v) => v.doc), [{ id: 'a', n: 2 }, { id: 'a', n: 3 }]);
  t.same(db.query({ table: 't', where: { n: 2 }, asOf: 2 }).rows.map((r) => r['id']), ['a', 'b'], 'the index covers them');
  await db.put({ table: 't', key: 'a', doc: { id: 'a', n: 4 } });
  await db.checkpoint();
  await db.close();
  const reopened = await openDatabase({ dataDir: dir, ...tinyCache });
  t.same(reopened.get({ table: 't', key: 'a', asOf: 3 }).doc, { id: 'a', n: 3 }, 'and after a checkpoint and a restart');
  await reopened.close();
});

t.test('a checkpoint from before the old-versions-in-the-log format is skipped and the log replayed', async (t) => {
  const dir = tempDir(t);
  const db = await openDatabase({ dataDir: dir });
  await db.createTable({ name: 't', primaryKey: 'id' });
  await db.put({ table: 't', key: 'a', doc: { id: 'a', v: 1 } });
  await db.put({ table: 't', key: 'a', doc: { id: 'a', v: 2 } });
  await db.checkpoint();
  await db.close();
  // Rewrite the checkpoint's header as the previous version (2): the loader must not trust its contents.
  const checkpoints = join(dir, 'checkpoints');
  const name = readdirSync(checkpoints).find((f) => f.endsWith('.ckpt'))!;
  const bytes = readFileSync(join(checkpoints, name));
  const header = bytes.subarray(9, 8 + bytes.readUInt32LE(0)).toString('utf8');
  const downgraded = JSON.stringify({ ...JSON.parse(header), version: 2 });
  const frame = encodeFrame(Buffer.concat([Buffer.from([0x01]), Buffer.from(downgraded)]));
  writeFileSync(join(checkpoints, name), Buffer.concat([frame, bytes.subarray(8 + bytes.readUInt32LE(0))]));
  const warnings: object[] = [];
  const reopened = await openDatabase({ dataDir: dir, logger: { info() {}, warn: (o) => warnings.push(o), error() {} } });
  t.teardown(() => reopened.close());
  t.same(reopened.history({ table: 't', key: 'a' }).versions.map((v) => v.doc), [{ id: 'a', v: 1 }, { id: 'a', v: 2 }]);
  t.equal(reopened.stats().checkpointSeq, null, 'the log was replayed instead');
  t.ok(warnings.length > 0, 'with a warning');
});

import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { openDatabase, type Database, type Doc } from '../../src/engine/index.js';

/** The type of a subtest's `t`. */
type Test = Parameters<Parameters<typeof t.test>[0]>[0];

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'driftdb-engine-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The brute-force model: every key's full history as (seq, doc|null). */
class Model {
  readonly history = new Map<string, Array<{ seq: number; doc: Doc | null }>>();
  at(key: string, seq: number): Doc | null {
    const versions = this.history.get(key) ?? [];
    let found: Doc | null = null;
    for (const v of versions) if (v.seq <= seq) found = v.doc;
    return found;
  }
  record(key: string, seq: number, doc: Doc | null): void {
    const versions = this.history.get(key) ?? [];
    versions.push({ seq, doc });
    this.history.set(key, versions);
  }
  liveKeysAt(seq: number): string[] {
    return [...this.history.keys()].filter((k) => this.at(k, seq) !== null).sort(codePointCompare);
  }
}

function codePointCompare(a: string, b: string): number {
  const x = [...a].map((c) => c.codePointAt(0)!);
  const y = [...b].map((c) => c.codePointAt(0)!);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

const opArbitrary = fc.record({
  kind: fc.constantFrom('put', 'put', 'patch', 'delete'),
  key: fc.constantFrom('a', 'b', 'c', '10', '9', 'é', '\u{1F600}', 'k'),
  color: fc.constantFrom('red', 'green', 'blue', null),
  size: fc.integer({ min: 0, max: 5 }),
});

async function scanAll(db: Database, table: string, asOf: number, limit: number): Promise<Doc[]> {
  const rows: Doc[] = [];
  let cursor: string | null = null;
  let seq: number | undefined;
  for (let pages = 0; pages < 100; pages++) {
    const page = db.scan({ table, limit, asOf, ...(cursor !== null ? { cursor } : {}) });
    seq ??= page.seq;
    if (page.seq !== seq) throw new Error('a cursor changed the snapshot');
    rows.push(...page.rows);
    cursor = page.nextCursor;
    if (cursor === null) break;
  }
  return rows;
}

async function checkAgainstModel(t: Test, db: Database, model: Model, seqs: number[]): Promise<void> {
  for (const seq of seqs) {
    const keys = model.liveKeysAt(seq);
    const scanned = await scanAll(db, 'items', seq, 3);
    t.same(scanned.map((d) => d.id), keys, `scan at seq ${seq}`);
    for (const key of model.history.keys()) {
      const expected = model.at(key, seq);
      if (expected === null) t.throws(() => db.get({ table: 'items', key, asOf: seq }), { code: 'row_not_found' });
      else t.same(db.get({ table: 'items', key, asOf: seq }).doc, expected, `get ${key} at ${seq}`);
    }
    for (const color of ['red', 'green', 'blue']) {
      const page = db.query({ table: 'items', where: { color }, asOf: seq, limit: 1000 });
      t.same(page.rows.map((d) => d.id), keys.filter((k) => model.at(k, seq)!.color === color), `color=${color} at ${seq}`);
    }
    const range = db.query({ table: 'items', where: { size: { $gte: 2, $lt: 4 } }, asOf: seq, limit: 1000 });
    const expectedRange = keys.filter((k) => {
      const size = model.at(k, seq)!.size;
      return typeof size === 'number' && size >= 2 && size < 4;
    });
    t.same(range.rows.map((d) => d.id), expectedRange, `2 <= size < 4 at ${seq}`);
  }
}

t.test('reads at every seq, indexed queries and pages agree with a brute-force model, across restarts', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.array(opArbitrary, { minLength: 1, maxLength: 40 }), fc.boolean(), async (ops, checkpoint) => {
      const dir = tempDir(t);
      let db = await openDatabase({ dataDir: dir });
      await db.createTable({ name: 'items', primaryKey: 'id', indexes: ['color', 'size'] });
      const model = new Model();
      const seqs = [db.durableSeq];
      for (const op of ops) {
        const current = model.at(op.key, db.durableSeq);
        if (op.kind === 'delete') {
          if (current === null) {
            await t.rejects(db.delete({ table: 'items', key: op.key }), { code: 'row_not_found' });
            continue;
          }
          const { seq } = await db.delete({ table: 'items', key: op.key });
          model.record(op.key, seq!, null);
        } else if (op.kind === 'put') {
          const doc = { id: op.key, color: op.color, size: op.size };
          const { seq, created } = await db.put({ table: 'items', key: op.key, doc });
          t.equal(created, current === null);
          model.record(op.key, seq!, doc);
        } else {
          const { seq } = await db.patch({ table: 'items', key: op.key, patch: { size: op.size, color: op.color } });
          const next: Doc = { ...(current ?? { id: op.key }), size: op.size };
          if (op.color === null) delete next.color;
          else next.color = op.color;
          model.record(op.key, seq!, next);
        }
        seqs.push(db.durableSeq);
      }
      await checkAgainstModel(t, db, model, seqs);
      if (checkpoint) await db.checkpoint();
      await db.close();
      db = await openDatabase({ dataDir: dir });
      await checkAgainstModel(t, db, model, seqs);
      await db.close();
    }),
    { numRuns: 12 },
  );
});

t.test('an index created on a table with rows is built from them, history included', async (t) => {
  const db = await openDatabase({ dataDir: tempDir(t) });
  await db.createTable({ name: 'people', primaryKey: 'id' });
  const first = await db.put({ table: 'people', key: '1', doc: { city: 'Oslo' } });
  await db.put({ table: 'people', key: '1', doc: { city: 'Rome' } });
  await db.put({ table: 'people', key: '2', doc: { address: { city: 'Oslo' } } });
  await db.createIndex('people', 'city');
  await db.createIndex('people', 'address.city');
  await t.rejects(db.createIndex('people', 'city'), { code: 'index_exists' });
  t.same(db.query({ table: 'people', where: { city: 'Oslo' } }).rows, []);
  t.same(db.query({ table: 'people', where: { city: 'Oslo' }, asOf: first.seq! }).rows, [{ id: '1', city: 'Oslo' }]);
  t.same(db.query({ table: 'people', where: { 'address.city': 'Oslo' } }).rows.map((r) => r.id), ['2']);
  t.equal(db.explain({ table: 'people', where: { 'address.city': 'Oslo' } }).plan.access, 'index');
  t.same(db.getTable('people').indexes, ['city', 'address.city']);
  await db.close();
});

t.test('conditional writes compare with the row\'s last event', async (t) => {
  const db = await openDatabase({ dataDir: tempDir(t) });
  await db.createTable({ name: 'docs', primaryKey: 'id' });
  await t.rejects(db.put({ table: 'docs', key: 'x', doc: {}, ifMatch: 1 }), { code: 'precondition_failed', fields: { currentSeq: null } });
  const a = await db.put({ table: 'docs', key: 'x', doc: {}, ifNoneMatch: true });
  await t.rejects(db.put({ table: 'docs', key: 'x', doc: {}, ifNoneMatch: true }), { code: 'precondition_failed', fields: { currentSeq: a.seq } });
  const b = await db.put({ table: 'docs', key: 'x', doc: { v: 2 }, ifMatch: a.seq! });
  await t.rejects(db.put({ table: 'docs', key: 'x', doc: {}, ifMatch: a.seq! }), { code: 'precondition_failed', fields: { currentSeq: b.seq } });
  const d = await db.delete({ table: 'docs', key: 'x' });
  await t.rejects(db.patch({ table: 'docs', key: 'x', patch: {}, ifMatch: '*' }), { code: 'precondition_failed', fields: { currentSeq: d.seq } });
  const again = await db.put({ table: 'docs', key: 'x', doc: { v: 3 }, ifNoneMatch: true });
  t.equal(again.created, true, 're-inserting a deleted key creates it');
  t.same(db.history({ table: 'docs', key: 'x' }).versions.map((v) => v.op), ['put', 'put', 'delete', 'put']);
  await db.close();
});

t.test('primary keys, schemas and names are checked', async (t) => {
  const db = await openDatabase({ dataDir: tempDir(t) });
  await t.rejects(db.createTable({ name: '_sys', primaryKey: 'id' }), { code: 'validation_failed' });
  await t.rejects(db.createTable({ name: '1x', primaryKey: 'id' }), { code: 'validation_failed' });
  await t.rejects(db.createTable({ name: 'bad', primaryKey: 'id', schema: { type: 'nonsense' } }), { code: 'validation_failed' });
  await db.createTable({
    name: 'users',
    primaryKey: 'id',
    schema: { type: 'object', properties: { age: { type: 'integer', minimum: 0 } }, required: ['age'] },
  });
  await t.rejects(db.createTable({ name: 'users', primaryKey: 'id' }), { code: 'table_exists' });
  t.same((await db.put({ table: 'users', key: '7', doc: { id: 7, age: 3 } })).created, true);
  await t.rejects(db.put({ table: 'users', key: '7', doc: { id: 8, age: 3 } }), { code: 'validation_failed' });
  await t.rejects(db.put({ table: 'users', key: '8', doc: { age: -1 } }), { code: 'validation_failed', fields: { errors: [{ keyword: 'minimum' }] } });
  await t.rejects(db.patch({ table: 'users', key: '7', patch: { id: 9 } }), { code: 'validation_failed' });
  await t.rejects(db.patch({ table: 'users', key: '7', patch: { age: null } }), { code: 'validation_failed' });
  const created = await db.patch({ table: 'users', key: 'new', patch: { age: 1 } });
  t.equal(created.created, true, 'PATCH upserts');
  t.same(db.get({ table: 'users', key: 'new' }).doc, { id: 'new', age: 1 });
  await t.rejects(db.put({ table: 'nope', key: '1', doc: {} }), { code: 'table_not_found' });
  await db.dropTable('users');
  t.throws(() => db.getTable('users'), { code: 'table_not_found' });
  await db.close();
});

t.test('a database reopened after a checkpoint and more writes replays only the tail', async (t) => {
  const dir = tempDir(t);
  let db = await openDatabase({ dataDir: dir });
  await db.createTable({ name: 'kv', primaryKey: 'k', indexes: ['n'] });
  await Promise.all(Array.from({ length: 200 }, (_, i) => db.put({ table: 'kv', key: `k${i}`, doc: { n: i % 7 } })));
  const { seq } = await db.checkpoint();
  await db.put({ table: 'kv', key: 'after', doc: { n: 3 } });
  await db.createIndex('kv', 'm');
  await db.close();
  db = await openDatabase({ dataDir: dir });
  t.equal(db.stats().checkpointSeq, seq);
  t.equal(db.getTable('kv').rowCount, 201);
  const expected = Array.from({ length: 200 }, (_, i) => i).filter((i) => i % 7 === 3).length + 1;
  t.equal(db.query({ table: 'kv', where: { n: 3 }, limit: 1000 }).rows.length, expected);
  t.same(db.getTable('kv').indexes, ['n', 'm']);
  await db.close();
});

t.test('a newest checkpoint damaged near its end is dropped after partly loading: the older one and the log rebuild the state', async (t) => {
  const dir = tempDir(t);
  let db = await openDatabase({ dataDir: dir });
  await db.createTable({ name: 'kv', primaryKey: 'k', indexes: ['n'] });
  await Promise.all(Array.from({ length: 300 }, (_, i) => db.put({ table: 'kv', key: `k${i}`, doc: { n: i % 5 } })));
  const older = await db.checkpoint();
  await db.createTable({ name: 'later', primaryKey: 'k' });
  await Promise.all(Array.from({ length: 300 }, (_, i) => db.put({ table: 'kv', key: `k${i}`, doc: { n: (i % 5) + 10 } })));
  await db.put({ table: 'later', key: 'x', doc: { v: 1 } });
  const newest = await db.checkpoint();
  const expected = db.query({ table: 'kv', where: { n: { $gte: 10 } }, limit: 1000 }).rows;
  await db.close();
  // Damage a byte shortly before the trailer: the file's first chunks load before the damage is found.
  const files = readdirSync(join(dir, 'checkpoints')).sort();
  t.equal(files.length, 2, 'the older checkpoint is kept');
  const newestFile = join(dir, 'checkpoints', files[1]!);
  const bytes = readFileSync(newestFile);
  bytes[bytes.length - 40]! ^= 0xff;
  writeFileSync(newestFile, bytes);
  db = await openDatabase({ dataDir: dir });
  t.equal(db.stats().checkpointSeq, older.seq, 'recovered from the older checkpoint');
  t.equal(db.durableSeq, newest.seq, 'and the log after it');
  t.same(db.query({ table: 'kv', where: { n: { $gte: 10 } }, limit: 1000 }).rows, expected);
  t.equal(db.getTable('kv').rowCount, 300, 'no row is doubled by the discarded partial load');
  t.same(db.get({ table: 'later', key: 'x' }).doc, { k: 'x', v: 1 });
  await db.close();
});

t.test('a failed fdatasync stops all writes with unavailable, and nothing unacknowledged becomes visible', async (t) => {
  const { nodeFileSystem } = await import('../../src/engine/storage/fs.js');
  const { faultyFileSystem } = await import('../helpers/faulty-fs.js');
  const fileSystem = faultyFileSystem(nodeFileSystem);
  const dir = tempDir(t);
  const db = await openDatabase({ dataDir: dir, fileSystem });
  await db.createTable({ name: 'kv', primaryKey: 'k' });
  const kept = await db.put({ table: 'kv', key: 'a', doc: { v: 1 } });
  fileSystem.setFaults({ failSyncAfter: 0 });
  await t.rejects(db.put({ table: 'kv', key: 'b', doc: { v: 2 } }), { code: 'unavailable' });
  fileSystem.setFaults({});
  await t.rejects(db.put({ table: 'kv', key: 'c', doc: { v: 3 } }), { code: 'unavailable' }, 'fail-stop stays stopped');
  t.throws(() => db.begin(), { code: 'unavailable' });
  t.equal(db.durableSeq, kept.seq, 'the watermark did not move');
  t.throws(() => db.get({ table: 'kv', key: 'b' }), { code: 'row_not_found' }, 'the failed write is invisible');
  t.same(db.get({ table: 'kv', key: 'a' }).doc, { k: 'a', v: 1 }, 'reads of acknowledged data still work');
  await db.close().catch(() => {});
});

t.test('a checkpoint is written automatically once enough log has grown since the last one', async (t) => {
  const dir = tempDir(t);
  const db = await openDatabase({ dataDir: dir, checkpointIntervalBytes: 64 * 1024 });
  await db.createTable({ name: 'kv', primaryKey: 'k' });
  t.equal(db.stats().checkpointSeq, null);
  const pad = 'x'.repeat(1000);
  for (let i = 0; i < 100; i++) await db.put({ table: 'kv', key: `k${i}`, doc: { pad } });
  // Waits for the background checkpoint; the bound is only there so a missing one fails instead of hanging.
  for (let waited = 0; db.stats().checkpointSeq === null && waited < 60_000; waited += 20) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const { checkpointSeq } = db.stats();
  t.ok(checkpointSeq !== null && checkpointSeq > 1, `checkpoint at seq ${checkpointSeq}`);
  await db.close();
  const { readdirSync } = await import('node:fs');
  t.ok(readdirSync(join(dir, 'checkpoints')).some((f) => f.endsWith('.ckpt')), 'the file is there');
  const reopened = await openDatabase({ dataDir: dir });
  t.equal(reopened.getTable('kv').rowCount, 100, 'and a restart from it has every row');
  await reopened.close();
});

/** Everything a reader can see of a table: keys, documents and history at several seqs, and indexed queries. */
function observe(db: Database, table: string, seqs: number[]): unknown {
  const seen: Record<string, unknown> = {};
  for (const seq of seqs) {
    const rows = db.scan({ table, asOf: seq, limit: 1000 }).rows;
    seen[`scan@${seq}`] = rows;
    for (const color of ['red', 'green', 'blue', 'gray']) {
      const query = { table, where: { color }, asOf: seq, limit: 1000 };
      seen[`color=${color}@${seq}`] = [db.query(query).rows, db.explain(query).plan.access];
    }
    seen[`tags@${seq}`] = db.query({ table, where: { tags: ['a', 'b'] }, asOf: seq, limit: 1000 }).rows;
    seen[`size@${seq}`] = db.query({ table, where: { size: { $gte: 2, $lt: 4 } }, asOf: seq, limit: 1000 }).rows;
  }
  const keys = db.scan({ table, limit: 1000 }).rows.map((row) => String(row.id));
  seen.history = keys.map((key) => db.history({ table, key }).versions.map(({ ts: _ts, ...rest }) => rest));
  seen.info = db.getTable(table);
  return seen;
}

t.test('recovery from the log alone, a checkpoint plus a log tail, or a checkpoint alone shows the same state', async (t) => {
  const dir = tempDir(t);
  let db = await openDatabase({ dataDir: dir });
  // Keys whose UTF-16 order differs from code-point order, a lone surrogate, and enough keys for many tree leaves.
  const odd = ['\u{1F600}', '\uFF5A', '\uD800x', 'é', '10', '9'];
  const keys = [...odd, ...Array.from({ length: 300 }, (_, i) => `r${String((i * 7919) % 300).padStart(3, '0')}`)];
  const colors = ['red', 'green', 'blue'];
  const put = (key: string, i: number): Promise<unknown> =>
    db.put({ table: 'items', key, doc: { id: key, color: colors[i % 3]!, size: i % 5, tags: i % 4 === 0 ? ['a', 'b'] : ['c'] } });
  await db.createTable({ name: 'items', primaryKey: 'id', indexes: ['color', 'tags'] });
  await db.createTable({ name: 'gone', primaryKey: 'id' });
  await db.put({ table: 'gone', key: 'x', doc: { id: 'x' } });
  for (const [i, key] of keys.entries()) await put(key, i);
  await db.dropTable('gone');
  await db.createTable({ name: 'gone', primaryKey: 'id', indexes: ['color'] });
  await db.put({ table: 'gone', key: 'y', doc: { id: 'y', color: 'gray' } });
  // Updates move keys between values (so a value's key list holds keys that left it), then a new index.
  for (const [i, key] of keys.entries()) if (i % 3 === 0) await put(key, i + 1);
  await db.createIndex('items', 'size');
  const early = db.durableSeq;
  await db.checkpoint();
  for (const [i, key] of keys.entries()) {
    if (i % 5 === 0) await db.delete({ table: 'items', key });
    else if (i % 5 === 1) await put(key, i + 2);
  }
  await db.put({ table: 'items', key: 'late', doc: { id: 'late', color: 'gray', size: 3, tags: ['a', 'b'] } });
  const seqs = [early - 5, early, db.durableSeq];
  const expected = [observe(db, 'items', seqs), observe(db, 'gone', [db.durableSeq])];
  await db.close();

  const logOnly = tempDir(t);
  cpSync(join(dir, 'wal'), join(logOnly, 'wal'), { recursive: true });
  db = await openDatabase({ dataDir: logOnly });
  t.same([observe(db, 'items', seqs), observe(db, 'gone', [db.durableSeq])], expected, 'log alone');
  t.equal(db.stats().checkpointSeq, null);
  await db.close();
  const reopen = async (label: string): Promise<void> => {
    db = await openDatabase({ dataDir: dir });
    t.same([observe(db, 'items', seqs), observe(db, 'gone', [db.durableSeq])], expected, label);
    // The rebuilt trees and indexes take new writes like any other.
    await put('\uFF5A', 1);
    await db.delete({ table: 'items', key: 'late' });
    t.same(db.query({ table: 'items', where: { color: 'green' }, limit: 1000 }).rows.some((row) => row.id === '\uFF5A'), true, `${label}: a new write is indexed`);
    await db.close();

  };
  await reopen('checkpoint plus log tail');
  rmSync(join(dir, 'checkpoints'), { recursive: true });
  db = await openDatabase({ dataDir: dir });
  const afterProbe = [observe(db, 'items', [...seqs, db.durableSeq]), observe(db, 'gone', [db.durableSeq])];
  await db.checkpoint();
  await db.close();
  db = await openDatabase({ dataDir: dir });
  t.same([observe(db, 'items', [...seqs, db.durableSeq]), observe(db, 'gone', [db.durableSeq])], afterProbe, 'checkpoint alone equals log alone');
  t.equal(db.stats().checkpointSeq, db.durableSeq);
  await db.close();
});

// Indexed queries through the real engine against a brute-force model: the index holds rows (not keys) in key order,
// pages stream from it, and a row of one version is not re-checked when the lookup is the whole where. Every answer
// must still equal the model's at every snapshot, inside transactions with their own writes, under a row policy,
// and after a restart from the log or from a checkpoint.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { openDatabase, type Database, type Doc, type Json, type QuerySpec, type RowPolicies, type Transaction } from '../../src/engine/index.js';
import { compileWhere } from '../../src/engine/query/index.js';

type Test = Parameters<Parameters<typeof t.test>[0]>[0];

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'driftdb-query-index-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function codePointCompare(a: string, b: string): number {
  const x = [...a].map((c) => c.codePointAt(0)!);
  const y = [...b].map((c) => c.codePointAt(0)!);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

/** Every key's versions as (seq, doc | null). */
class Model {
  readonly history = new Map<string, Array<{ seq: number; doc: Doc | null }>>();

  at(key: string, seq: number): Doc | null {
    let found: Doc | null = null;
    for (const version of this.history.get(key) ?? []) if (version.seq <= seq) found = version.doc;
    return found;
  }

  record(key: string, seq: number, doc: Doc | null): void {
    const versions = this.history.get(key) ?? [];
    versions.push({ seq, doc });
    this.history.set(key, versions);
  }

  /** Live documents at `seq`, with `overlay` (a transaction's own writes) on top, in key order. */
  rowsAt(seq: number, overlay: Map<string, Doc | null> = new Map()): Doc[] {
    const keys = new Set([...this.history.keys(), ...overlay.keys()]);
    return [...keys]
      .sort(codePointCompare)
      .map((key) => (overlay.has(key) ? overlay.get(key)! : this.at(key, seq)))
      .filter((doc): doc is Doc => doc !== null);
  }
}

// Enough keys that a value is held by more than 16 rows (an index keeps those in a RowList), keys that sort
// differently by code unit and by code point, and values that rows move between.
const keys = [...Array.from({ length: 40 }, (_, i) => `k${i}`), '10', '9', 'é', '\u{1F600}', '\u{FF61}'];

interface Op {
  kind: 'put' | 'patch' | 'delete';
  key: string;
  color: string | null;
  grp: number;
}

const opArbitrary: fc.Arbitrary<Op> = fc.record({
  kind: fc.constantFrom('put', 'put', 'put', 'patch', 'delete'),
  key: fc.constantFrom(...keys),
  color: fc.constantFrom('red', 'blue', null),
  grp: fc.integer({ min: 1, max: 3 }),
});

/** Applies `op` to the document `current`; undefined when the op cannot apply (delete or patch of a missing row). */
function nextDoc(op: Op, current: Doc | null): Doc | null | undefined {
  if (op.kind === 'delete') return current === null ? undefined : null;
  if (op.kind === 'patch') {
    if (current === null) return undefined;
    const next: Doc = { ...current, grp: op.grp };
    if (op.color === null) delete next.color;
    else next.color = op.color;
    return next;
  }
  return op.color === null ? { id: op.key, grp: op.grp } : { id: op.key, color: op.color, grp: op.grp };
}

async function write(db: Database | Transaction, op: Op): Promise<number | null> {
  if (op.kind === 'delete') return (await db.delete({ table: 'items', key: op.key })).seq;
  if (op.kind === 'patch') {
    return (await db.patch({ table: 'items', key: op.key, patch: { grp: op.grp, color: op.color } })).seq;
  }
  return (await db.put({ table: 'items', key: op.key, doc: nextDoc(op, null)! })).seq;
}

const queries: { where: { [field: string]: Json }; matches: (doc: Doc) => boolean }[] = [
  { where: { color: 'red' }, matches: (doc) => doc.color === 'red' },
  { where: { color: { $eq: 'blue' } }, matches: (doc) => doc.color === 'blue' },
  { where: { grp: { $in: [1, 3] } }, matches: (doc) => doc.grp === 1 || doc.grp === 3 },
  { where: { grp: { $gte: 2, $lt: 4 } }, matches: (doc) => (doc.grp as number) >= 2 },
  // Not the lookup alone: every candidate is re-checked.
  { where: { color: 'red', grp: 2 }, matches: (doc) => doc.color === 'red' && doc.grp === 2 },
  { where: { $and: [{ grp: 3 }], id: { $prefix: 'k1' } }, matches: (doc) => doc.grp === 3 && String(doc.id).startsWith('k1') },
];

/** Every page of `spec`, following cursors. */
function allPages(run: (spec: QuerySpec) => { rows: Doc[]; nextCursor: string | null }, spec: QuerySpec): Doc[] {
  const rows: Doc[] = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < 200; pages++) {
    const page = run(cursor === null ? spec : { ...spec, cursor });
    rows.push(...page.rows);
    cursor = page.nextCursor;
    if (cursor === null) return rows;
  }
  throw new Error('paging did not end');
}

const ids = (rows: Doc[]): Json[] => rows.map((doc) => doc.id!);

function checkQueries(
  t: Test,
  label: string,
  run: (spec: QuerySpec) => { rows: Doc[]; nextCursor: string | null },
  expected: Doc[],
  extra: Partial<QuerySpec> = {},
): void {
  for (const { where, matches } of queries) {
    const want = expected.filter(matches);
    t.same(ids(allPages(run, { table: 'items', where, limit: 4, ...extra })), ids(want), `${label}: ${JSON.stringify(where)}`);
    const ordered = allPages(run, { table: 'items', where, orderBy: [{ field: 'grp', dir: 'desc' }], limit: 5, ...extra });
    const byGrp = [...want].sort((a, b) => (b.grp as number) - (a.grp as number));
    t.same(ids(ordered), ids(byGrp), `${label}: ${JSON.stringify(where)} by grp desc`);
  }
}

/** Sees rows whose grp is not 2. */
const policies: RowPolicies = { forTable: () => ({ read: compileWhere({ grp: { $ne: 2 } }), write: () => true }) };

t.test('indexed queries agree with the model at every snapshot, in transactions, under a policy, across restarts', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.array(opArbitrary, { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 14 }),
      fc.array(opArbitrary, { maxLength: 6 }),
      fc.boolean(),
      async (commits, txOps, checkpoint) => {
        const dir = tempDir(t);
        let db = await openDatabase({ dataDir: dir });
        await db.createTable({ name: 'items', primaryKey: 'id', indexes: ['color'] });
        const model = new Model();
        const seqs = [db.durableSeq];
        for (const [i, ops] of commits.entries()) {
          // Some commits write several rows at once; the index is created after the first (built from history).
          const tx = db.begin({ isolation: 'read_committed' });
          const pending = new Map<string, Doc | null>();
          for (const op of ops) {
            const next = nextDoc(op, pending.has(op.key) ? pending.get(op.key)! : model.at(op.key, db.durableSeq));
            if (next === undefined) continue;
            await write(tx, op);
            pending.set(op.key, next);
          }
          const { seq } = await tx.commit();
          if (seq !== null) for (const [key, doc] of pending) model.record(key, seq, doc);
          seqs.push(db.durableSeq);
          if (i === 0) await db.createIndex('items', 'grp');
        }
        const check = (label: string): void => {
          for (const seq of seqs) {
            checkQueries(t, `${label} at ${seq}`, (spec) => db.query(spec), model.rowsAt(seq), { asOf: seq });
          }
          const newest = db.durableSeq;
          checkQueries(t, `${label} newest`, (spec) => db.query(spec), model.rowsAt(newest));
          checkQueries(t, `${label} policy`, (spec) => db.query(spec, { policies }), model.rowsAt(newest).filter((doc) => doc.grp !== 2));
        };
        check('live');

        // A transaction's queries see its snapshot with its own writes on top, rows moved between values included.
        const tx = db.begin({ isolation: 'snapshot' });
        const own = new Map<string, Doc | null>();
        for (const op of txOps) {
          const current = own.has(op.key) ? own.get(op.key)! : model.at(op.key, tx.snapshotSeq);
          const next = nextDoc(op, current);
          if (next === undefined) continue;
          await write(tx, op);
          own.set(op.key, next);
        }
        checkQueries(t, 'in a transaction', (spec) => tx.query(spec), model.rowsAt(tx.snapshotSeq, own));
        tx.rollback();

        if (checkpoint) await db.checkpoint();
        await db.close();
        db = await openDatabase({ dataDir: dir });
        check(checkpoint ? 'after a checkpoint' : 'after replay');
        await db.close();
      },
    ),
    { numRuns: 10 },
  );
});

t.test('a large value pages in key order from its index and stops at the limit', async (t) => {
  const db = await openDatabase({ dataDir: tempDir(t) });
  t.teardown(() => db.close());
  await db.createTable({ name: 'items', primaryKey: 'id', indexes: ['color'] });
  // Keys written out of order, so the index's list of 'red' is kept in order as rows join anywhere in it.
  const written: string[] = [];
  for (let i = 0; i < 300; i++) written.push(`r${(i * 7919) % 300}`);
  for (let from = 0; from < written.length; from += 50) {
    const tx = db.begin({ isolation: 'read_committed' });
    for (const key of written.slice(from, from + 50)) await tx.put({ table: 'items', key, doc: { id: key, color: 'red' } });
    await tx.commit();
  }
  const expected = [...written].sort(codePointCompare);
  const all = allPages((spec) => db.query(spec), { table: 'items', where: { color: 'red' }, limit: 7 });
  t.same(ids(all), expected, 'every row once, in key order, across pages');
  const page = db.query({ table: 'items', where: { color: 'red' }, limit: 5 });
  t.same(ids(page.rows), expected.slice(0, 5));
  t.ok(page.nextCursor);
});

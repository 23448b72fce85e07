// Table schemas: any valid draft 2020-12 schema is taken, known formats are checked, and no pattern can make
// validation run for long (patterns that could are refused when the table is created).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { openDatabase, type Database, type Doc } from '../../src/engine/index.js';

type Test = Parameters<Parameters<typeof t.test>[0]>[0];

async function database(t: Test): Promise<Database> {
  const dir = mkdtempSync(join(tmpdir(), 'driftdb-schema-'));
  const db = await openDatabase({ dataDir: dir });
  t.teardown(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return db;
}

async function tableWith(db: Database, name: string, schema: Doc): Promise<void> {
  await db.createTable({ name, primaryKey: 'id', schema });
}

t.test('a pattern that backtracks exponentially in JavaScript validates in linear time', async (t) => {
  const db = await database(t);
  await tableWith(db, 'redos', { type: 'object', properties: { name: { type: 'string', pattern: '^(a+)+$' } } });
  // No clock needed: backtracking over 5000 characters would not end before the universe does, so the answer
  // arriving at all (within tap's per-file timeout) is the proof, on any machine however slow.
  await t.rejects(db.put({ table: 'redos', key: 'k', doc: { name: `${'a'.repeat(5000)}!` } }), { code: 'validation_failed' });
  t.equal((await db.put({ table: 'redos', key: 'k', doc: { name: 'aaaa' } })).created, true, 'a matching value is taken');
});

t.test('patterns the linear engine cannot run, or whose meaning needs the u flag, are refused at creation', async (t) => {
  const db = await database(t);
  const refused: Array<[string, Doc]> = [
    ['backreference', { properties: { s: { pattern: '(a)\\1' } } }],
    ['lookahead', { properties: { s: { pattern: '(?=a)b' } } }],
    ['lookbehind', { items: { pattern: '(?<!x)y' } }],
    ['property escape', { properties: { s: { pattern: '^\\p{L}+$' } } }],
    ['patternProperties key', { patternProperties: { '(x)\\1': { type: 'string' } } }],
    ['nested under $defs', { $defs: { deep: { anyOf: [{ pattern: '(?=a)' }] } } }],
  ];
  for (const [what, schema] of refused) {
    await t.rejects(tableWith(db, 'r', schema), { code: 'validation_failed', message: /pattern .* is refused/ }, what);
  }
  t.same(db.listTables(), [], 'no table was created');
  await tableWith(db, 'fine', {
    properties: { pattern: { type: 'string', pattern: '^[a-z]{2,5}$' } },
    default: { pattern: '(a)\\1' },
  });
  t.equal(db.listTables().length, 1, 'a property named pattern, and data holding one, are not patterns');
});

t.test('every valid draft 2020-12 schema is taken; known formats are checked, unknown keywords and formats are annotations', async (t) => {
  const db = await database(t);
  await tableWith(db, 'a', { properties: { n: { minimum: 1 }, s: { pattern: 'x' } } });
  await tableWith(db, 'b', { type: 'object', properties: { mail: { type: 'string', format: 'email' }, z: { format: 'no-such-format' } } });
  await tableWith(db, 'c', { type: 'object', 'x-custom': 1 });
  await t.rejects(db.put({ table: 'a', key: '1', doc: { n: 0 } }), { code: 'validation_failed' }, 'minimum without type applies to numbers');
  t.equal((await db.put({ table: 'a', key: '2', doc: { n: 'zero', s: 'axb' } })).created, true, 'and not to strings');
  await t.rejects(db.put({ table: 'b', key: '1', doc: { mail: 'not an address' } }), { code: 'validation_failed' }, 'email is checked');
  t.equal((await db.put({ table: 'b', key: '2', doc: { mail: 'ada@example.com', z: 'anything' } })).created, true);
  t.equal((await db.put({ table: 'c', key: '1', doc: {} })).created, true);
});

t.test('a primary key is a top-level field name: a dotted one is refused', async (t) => {
  const db = await database(t);
  await t.rejects(db.createTable({ name: 'h', primaryKey: 'a.b' }), { code: 'validation_failed', message: /without dots/ });
});

// Pages bounded by their JSON text (limits.pageBytesMax): a page ends early, before the row that would pass the
// bound, always holds at least one row, and its cursor resumes right after its last row, for key-order, ordered,
// projected and history pages alike.

import fc from 'fast-check';
import t from 'tap';
import { compileQuery, executeQuery } from '../../src/engine/query/index.js';
import type { QueryPage, QuerySpec, RowSource } from '../../src/engine/query/index.js';
import { limits } from '../../src/limits.js';
import type { Doc } from '../../src/engine/types.js';
import { MemorySource, sourceOf, tableDef, type RowEvent } from './query-fixtures.js';

function run(source: RowSource, spec: Omit<QuerySpec, 'table'>, pageBytesMax?: number): QueryPage {
  const options = pageBytesMax === undefined ? {} : { pageBytesMax };
  return executeQuery(compileQuery({ table: 'items', ...spec }, source.table), source, options);
}

/** Every page, following nextCursor to the end. */
function pages(source: RowSource, spec: Omit<QuerySpec, 'table'>, pageBytesMax: number): QueryPage[] {
  const all: QueryPage[] = [];
  let cursor: string | null = null;
  do {
    const page: QueryPage = run(source, { ...spec, cursor }, pageBytesMax);
    all.push(page);
    cursor = page.nextCursor;
    if (all.length > 10_000) throw new Error('paging does not advance');
  } while (cursor !== null);
  return all;
}

/** A document whose stored text (JSON.stringify) is exactly `bytes` long. */
function docOfSize(id: string, bytes: number, extra: Doc = {}): Doc {
  const bare = JSON.stringify({ id, ...extra, pad: '' }).length;
  if (bytes < bare) throw new Error(`a document of ${id} needs at least ${bare} bytes`);
  return { id, ...extra, pad: 'x'.repeat(bytes - bare) };
}

const keyOf = (i: number): string => String(i).padStart(2, '0');

const textOf = (rows: Doc[]): number => rows.reduce((sum, row) => sum + JSON.stringify(row).length, 0);

t.test('the page bound is a named limit, by default 16 MiB', async (t) => {
  t.equal(limits.pageBytesMax, 16 * 1024 * 1024);
  const source = sourceOf([docOfSize('a', 100), docOfSize('b', 100)]);
  t.equal(run(source, {}).rows.length, 2, 'small rows are not cut by the default bound');
});

t.test('a key-order page ends before the row that would pass the bound, and its cursor resumes after it', async (t) => {
  const source = sourceOf(['a', 'b', 'c', 'd', 'e'].map((id) => docOfSize(id, 100)));
  const first = run(source, { limit: 10 }, 250);
  t.same(
    first.rows.map((row) => row.id),
    ['a', 'b'],
    'two rows of 100 fit in 250, a third would not',
  );
  t.type(first.nextCursor, 'string', 'a page cut short has a cursor even though it holds fewer than limit rows');
  const second = run(source, { limit: 10, cursor: first.nextCursor }, 250);
  t.same(
    second.rows.map((row) => row.id),
    ['c', 'd'],
  );
  const third = run(source, { limit: 10, cursor: second.nextCursor }, 250);
  t.same(
    third.rows.map((row) => row.id),
    ['e'],
  );
  t.equal(third.nextCursor, null);
  const exact = run(source, { limit: 10 }, 300);
  t.equal(exact.rows.length, 3, 'rows that reach the bound exactly still fit');
  t.same(exact.rowsJson, exact.rows.map((row) => JSON.stringify(row)), 'a cut page still answers the stored text');
});

t.test('a row larger than the bound comes alone, so paging always advances', async (t) => {
  const source = sourceOf([docOfSize('a', 50), docOfSize('b', 500), docOfSize('c', 50), docOfSize('d', 50)]);
  const all = pages(source, { limit: 10 }, 120);
  t.same(
    all.map((page) => page.rows.map((row) => row.id)),
    [['a'], ['b'], ['c', 'd']],
    'a, then b alone (over the bound), then c and d',
  );
});

t.test('limit still ends a page first when the rows are small', async (t) => {
  const source = sourceOf(['a', 'b', 'c'].map((id) => docOfSize(id, 40)));
  const page = run(source, { limit: 2 }, 1000);
  t.equal(page.rows.length, 2);
  t.type(page.nextCursor, 'string');
  t.equal(run(source, { limit: 3 }, 1000).nextCursor, null, 'no cursor when nothing is left over');
});

t.test('ordered pages are cut by size too and keep the order and every row exactly once across ties', async (t) => {
  const docs = Array.from({ length: 30 }, (_, i) => docOfSize(`r${keyOf(i)}`, 60 + (i % 4) * 40, { g: i % 3 }));
  const source = sourceOf(docs);
  const spec = { orderBy: [{ field: 'g', dir: 'desc' as const }], limit: 8 };
  const all = pages(source, spec, 300);
  const whole = run(source, { ...spec, limit: 1000 }).rows;
  t.same(
    all.flatMap((page) => page.rows),
    whole,
  );
  t.ok(all.length > 30 / 8 + 1, `the size bound cut pages before limit did (${all.length} pages)`);
  for (const page of all.slice(0, -1)) {
    t.ok(textOf(page.rows) <= 300 || page.rows.length === 1, 'each page stays within the bound');
    t.type(page.nextCursor, 'string');
  }
});

t.test('projected pages count the stored text their rows come from', async (t) => {
  const source = sourceOf(['a', 'b', 'c'].map((id) => docOfSize(id, 100)));
  const page = run(source, { select: ['id'], limit: 10 }, 250);
  t.same(page.rows, [{ id: 'a' }, { id: 'b' }], 'the small projections are budgeted at the documents\' 100 bytes');
  t.same(
    run(source, { select: ['id'], limit: 10, cursor: page.nextCursor }, 250).rows,
    [{ id: 'c' }],
  );
});

t.test('history pages are cut by the text of their rows and their cursors return every version once', async (t) => {
  const events: RowEvent[] = [];
  for (const key of ['a', 'b']) {
    for (let i = 0; i < 5; i++) events.push({ key, op: 'put', doc: docOfSize(key, 100 + i, { i }) });
    events.push({ key, op: 'delete', doc: null });
  }
  const source = new MemorySource({ table: tableDef(), events });
  const whole = run(source, { history: true, limit: 1000 }).rows;
  t.equal(whole.length, 10, 'deletes never match');
  const rowBytes = JSON.stringify(whole[0]).length;
  t.ok(rowBytes > 100, 'a history row counts key, seq, ts and op besides its document');
  const all = pages(source, { history: true, limit: 1000 }, 3 * rowBytes + 10);
  t.same(
    all.map((page) => page.rows.length),
    [3, 3, 3, 1],
  );
  t.same(
    all.flatMap((page) => page.rows),
    whole,
  );
});

t.test('aggregate answers are not cut by the page bound', async (t) => {
  const source = sourceOf(['a', 'b', 'c'].map((id, i) => docOfSize(id, 100, { g: i })));
  const page = run(source, { groupBy: ['g'], aggregates: { n: { $count: true } } }, 1);
  t.equal(page.rows.length, 3);
  t.equal(page.nextCursor, null);
});

t.test('for any sizes, limits and bounds, following cursors returns the unbounded answer exactly once', async (t) => {
  const property = fc.property(
    fc.array(fc.integer({ min: 30, max: 200 }), { minLength: 0, maxLength: 25 }),
    fc.integer({ min: 1, max: 10 }),
    fc.integer({ min: 1, max: 800 }),
    fc.boolean(),
    (sizes, limit, bytesMax, ordered) => {
      const source = sourceOf(sizes.map((size, i) => docOfSize(`k${keyOf(i)}`, size + 20, { s: size % 7 })));
      const spec: Omit<QuerySpec, 'table'> = ordered ? { orderBy: [{ field: 's' }], limit } : { limit };
      const all = pages(source, spec, bytesMax);
      const whole = run(source, { ...spec, limit: 1000 }, Number.MAX_SAFE_INTEGER).rows;
      if (JSON.stringify(all.flatMap((page) => page.rows)) !== JSON.stringify(whole)) return false;
      return all.every(
        (page) =>
          page.rows.length <= limit &&
          (page.rows.length <= 1 || textOf(page.rows) <= bytesMax) &&
          (page.nextCursor === null || page.rows.length >= 1),
      );
    },
  );
  t.doesNotThrow(() => fc.assert(property, { numRuns: 200 }));
});

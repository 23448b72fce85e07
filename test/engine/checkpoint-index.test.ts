// A checkpoint's indexes list a row under the values of its versions up to the checkpoint's seq only. A row written
// again while the chunks are produced may already be indexed under its newer value; if that version is lost in a
// crash, a loaded index that still listed the row there would make a query trust it (a row of one version is not
// re-checked when the index lookup is the whole where).

import t from 'tap';
import { CheckpointLoader, dumpCheckpoint } from '../../src/engine/checkpoint-codec.js';
import type { DocumentReader } from '../../src/engine/log/document-reader.js';
import { CommitTimeline } from '../../src/engine/mvcc/commit-timeline.js';
import { IdempotencyStore } from '../../src/engine/mvcc/idempotency.js';
import { SnapshotSource } from '../../src/engine/mvcc/sources.js';
import { TableState } from '../../src/engine/mvcc/table-state.js';
import { compileQuery, executeQuery } from '../../src/engine/query/index.js';
import type { TableDef } from '../../src/engine/types.js';

/** Documents "in the log" by location: what the version store reads back for old versions. */
function documentsOf(texts: Map<number, string>): DocumentReader {
  return { read: (ref: { location: number }) => texts.get(ref.location)!, remember: () => undefined } as unknown as DocumentReader;
}

function tableDef(): TableDef {
  return { name: 'items', primaryKey: 'id', indexes: ['color'], createdSeq: 0 };
}

function colors(table: TableState, seq: number, color: string): string[] {
  const source = new SnapshotSource(table, seq, () => 0);
  return executeQuery(compileQuery({ table: 'items', where: { color } }, table.def), source).rows.map((doc) => String(doc.id));
}


/** No commit records: these checkpoints hold no idempotency keys. */
function noRecords(): never {
  throw new Error('no commit records here');
}

/** What a checkpoint at `seq` of one table dumps: commits 1..seq at time 0, no idempotency keys. */
function dumpInput(seq: number, table: TableState) {
  const timeline = new CommitTimeline();
  for (let i = 1; i <= seq; i++) timeline.record(i, 0);
  return { seq, tables: [table], timeline, segments: () => [], idempotency: new IdempotencyStore(noRecords) };
}

t.test('a row written again above the checkpoint seq is not listed under its newer value', async (t) => {
  const texts = new Map<number, string>();
  const table = new TableState(tableDef(), null, documentsOf(texts));
  const put = (seq: number, key: string, color: string, location: number): void => {
    const json = JSON.stringify({ id: key, color });
    texts.set(location, json);
    table.applyRow(seq, key, 'put', json, { location });
  };
  put(1, 'a', 'red', 100);
  put(2, 'b', 'red', 200);
  put(3, 'b', 'green', 300);
  // Seq 4 and 5 are applied but not in the checkpoint at seq 3 (nor, after a crash, anywhere).
  put(4, 'a', 'blue', 400);
  put(5, 'c', 'blue', 500);
  t.same(colors(table, 5, 'blue'), ['a', 'c'], 'before the checkpoint, the newest state');

  const chunks = [...dumpCheckpoint(dumpInput(3, table))];
  const tables = new Map<string, TableState>();
  const loader = new CheckpointLoader({ tables, makeTable: (def) => new TableState(def, null, documentsOf(texts)), segments: [], idempotency: new IdempotencyStore(noRecords) });
  for (const chunk of chunks) loader.chunk(chunk);
  loader.finish();
  const loaded = tables.get('items')!;
  t.equal(loaded.indexesExact, true);
  t.same(colors(loaded, 3, 'blue'), [], "'a' held blue only in a version the checkpoint does not hold");
  t.same(colors(loaded, 3, 'red'), ['a'], "'b' is red no more, 'a' is (and has one version)");
  t.same(colors(loaded, 3, 'green'), ['b']);
  t.same(colors(loaded, 2, 'red'), ['a', 'b'], 'an older snapshot');
  const dumped = [...loaded.indexes.get('color')!.dump()].map(([value, rows]) => [value, rows.map((row) => row.key)]);
  t.same(dumped, [['green', ['b']], ['red', ['a', 'b']]], 'the loaded index, exactly');
});

t.test('the indexes of a format 4 checkpoint, which may list rows under lost values, are not trusted', async (t) => {
  const texts = new Map<number, string>([[100, JSON.stringify({ id: 'a', color: 'red' })]]);
  const table = new TableState(tableDef(), null, documentsOf(texts));
  table.applyRow(1, 'a', 'put', texts.get(100)!, { location: 100 });
  const [meta, ...rest] = [...dumpCheckpoint(dumpInput(1, table))];
  // The meta chunk again, as format 4 wrote it.
  const header = JSON.parse(meta!.toString('utf8', 4, 4 + meta!.readUInt32LE(0)));
  const text = JSON.stringify({ ...header, v: 4 });
  const old = Buffer.alloc(4 + Buffer.byteLength(text));
  old.writeUInt32LE(Buffer.byteLength(text), 0);
  old.write(text, 4);
  const tables = new Map<string, TableState>();
  const loader = new CheckpointLoader({ tables, makeTable: (def) => new TableState(def, null, documentsOf(texts)), segments: [], idempotency: new IdempotencyStore(noRecords) });
  for (const chunk of [old, ...rest]) loader.chunk(chunk);
  loader.finish();
  const loaded = tables.get('items')!;
  t.equal(loaded.indexesExact, false);
  t.equal(new SnapshotSource(loaded, 1, () => 0).readRow('a')?.indexedExactly, false, 'every candidate is re-checked');
  t.same(colors(loaded, 1, 'red'), ['a']);
});

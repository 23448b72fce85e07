// What a checkpoint holds and how: the materialized state at seq N (every table, the full history of every
// key, every index) as a sequence of chunks, and the reverse. The file framing lives in log/checkpoint.ts.
//
// Chunks are JSON, except row chunks, which are lines: a JSON header line, then per key a JSON line
// [key, seq, op, seq, op, …] followed by one line per version holding its document's JSON text as stored (empty
// for a delete). Stored JSON text never holds a raw newline, so documents are cut out of the chunk as they are,
// without the unescaping a JSON string of a document would cost at every restart.

import { assert } from '../assert.js';
import type { IndexValue } from './index/secondary-index.js';
import type { TableState } from './mvcc/table-state.js';
import type { RowOp, TableDef, Version } from './types.js';

const formatVersion = 2;
const rowsPerChunk = 2000;
const indexEntriesPerChunk = 5000;

type Chunk =
  | { k: 'meta'; v: number; seq: number; ts: number[] }
  | { k: 'table'; def: TableDef }
  | { k: 'index'; t: string; f: string; e: Array<EncodedIndexValue | string | string[]> };

type EncodedIndexValue = null | boolean | number | string | { j: string };

const opCodes: Record<RowOp, number> = { put: 0, patch: 1, delete: 2 };
const opsByCode: RowOp[] = ['put', 'patch', 'delete'];

export interface DumpInput {
  seq: number;
  tables: TableState[];
  tsOf(seq: number): number;
}

/**
 * Captures the catalog now (synchronously) and returns chunks produced lazily; versions above `seq` that are
 * applied while the chunks are written are left out, so the dump is the state at exactly `seq`.
 */
export function dumpCheckpoint(input: DumpInput): Iterable<string> {
  const { seq } = input;
  const tables = input.tables
    .filter((t) => t.def.createdSeq <= seq)
    .map((t) => ({ state: t, def: structuredClone(t.def) }));
  const ts: number[] = [];
  let previous = 0;
  for (let s = 1; s <= seq; s++) {
    const value = input.tsOf(s);
    ts.push(value - previous);
    previous = value;
  }
  return (function* () {
    yield JSON.stringify({ k: 'meta', v: formatVersion, seq, ts } satisfies Chunk);
    for (const { state, def } of tables) {
      yield JSON.stringify({ k: 'table', def } satisfies Chunk);
      yield* dumpRows(state, def.name, seq);
      for (const field of def.indexes) yield* dumpIndex(state, def.name, field);
    }
  })();
}

function* dumpRows(state: TableState, table: string, seq: number): Iterable<string> {
  const header = `${JSON.stringify({ k: 'rows', t: table })}\n`;
  let lines: string[] = [];
  let count = 0;
  for (const [key, chain] of state.rows.entries()) {
    const visible = chain.filter((v) => v.seq <= seq);
    if (visible.length === 0) continue;
    const meta: Array<string | number> = [key];
    for (const v of visible) meta.push(v.seq, opCodes[v.op]);
    lines.push(JSON.stringify(meta));
    for (const v of visible) lines.push(v.json ?? '');
    if (++count === rowsPerChunk) {
      yield header + lines.join('\n');
      lines = [];
      count = 0;
    }
  }
  if (count > 0) yield header + lines.join('\n');
}

function* dumpIndex(state: TableState, table: string, field: string): Iterable<string> {
  const index = state.indexes.get(field);
  if (index === undefined) return;
  let entries: Chunk & { k: 'index' } = { k: 'index', t: table, f: field, e: [] };
  for (const [value, keys] of index.dump()) {
    entries.e.push(encodeIndexValue(value), keys);
    if (entries.e.length >= 2 * indexEntriesPerChunk) {
      yield JSON.stringify(entries);
      entries = { k: 'index', t: table, f: field, e: [] };
    }
  }
  if (entries.e.length > 0) yield JSON.stringify(entries);
}

function encodeIndexValue(value: IndexValue): EncodedIndexValue {
  return value !== null && typeof value === 'object' ? { j: value.json } : value;
}

function decodeIndexValue(value: EncodedIndexValue): IndexValue {
  return value !== null && typeof value === 'object' ? { json: value.j } : value;
}

export interface CheckpointLoad {
  tables: Map<string, TableState>;
  /** Commit times of seq 1..N, filled by the meta chunk. */
  tsBySeq: number[];
  makeTable(def: TableDef): TableState;
}

export function loadCheckpointChunk(load: CheckpointLoad, payload: string): void {
  if (payload.startsWith('{"k":"rows"')) {
    loadRows(load, payload);
    return;
  }
  const chunk = JSON.parse(payload) as Chunk;
  switch (chunk.k) {
    case 'meta': {
      assert(chunk.v === formatVersion, `unknown checkpoint format ${chunk.v}`);
      let ts = 0;
      load.tsBySeq = chunk.ts.map((delta) => (ts += delta));
      return;
    }
    case 'table':
      load.tables.set(chunk.def.name, load.makeTable(chunk.def));
      return;
    case 'index': {
      const index = requireTable(load, chunk.t).indexes.get(chunk.f);
      assert(index !== undefined, `checkpoint index ${chunk.t}.${chunk.f} has no table index`);
      for (let i = 0; i < chunk.e.length; i += 2) {
        index.load(decodeIndexValue(chunk.e[i] as EncodedIndexValue), chunk.e[i + 1] as string | string[]);
      }
      return;
    }
  }
}

function requireTable(load: CheckpointLoad, name: string): TableState {
  const table = load.tables.get(name);
  assert(table !== undefined, `checkpoint rows for unknown table ${name}`);
  return table;
}

// Rows arrive in key order, so every insert takes the sorted map's append path.
function loadRows(load: CheckpointLoad, payload: string): void {
  let end = payload.indexOf('\n');
  const table = requireTable(load, (JSON.parse(payload.slice(0, end)) as { t: string }).t);
  while (end < payload.length) {
    let start = end + 1;
    end = lineEnd(payload, start);
    const meta = JSON.parse(payload.slice(start, end)) as Array<string | number>;
    const count = (meta.length - 1) / 2;
    const chain: Version[] = new Array(count);
    for (let n = 0; n < count; n++) {
      start = end + 1;
      end = lineEnd(payload, start);
      const json = end === start ? null : payload.slice(start, end);
      chain[n] = { seq: meta[1 + 2 * n] as number, op: opsByCode[meta[2 + 2 * n] as number]!, json };
    }
    table.rows.set(meta[0] as string, chain);
    if (chain[count - 1]!.json !== null) table.liveRows++;
  }
}

function lineEnd(text: string, from: number): number {
  const end = text.indexOf('\n', from);
  return end === -1 ? text.length : end;
}

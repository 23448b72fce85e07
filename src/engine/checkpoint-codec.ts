// What a checkpoint holds and how: the materialized state at seq N (every table, every key's history as the version
// store keeps it, every index) as a sequence of chunks, and the reverse. The file framing lives in log/checkpoint.ts.
//
// A chunk is [u32 LE header bytes][header JSON][binary body]. The header names the kind and the counts; the body
// carries what would be slow to parse as JSON, laid out as arrays:
//   meta   (no body) the format, N, and the log segment files by ordinal: old versions are stored as locations in
//          them, so a checkpoint whose segments are not the log's own any more is refused (the log is replayed).
//   ts     f64 commit time of each seq, then f64 log location of each seq's record, in seq order (several chunks
//          for a long log)
//   table  (no body) a table definition; the rows and indexes that follow belong to it
//   rows   u32 versions per key | f64 two per version: packed seq/op, document location | u32 key length per key |
//          u32 length of the key's document at N per key (0 = deleted at N) | keys as UTF-16LE | documents as UTF-8
//          Lengths count UTF-16 code units, so each text is decoded once and cut into strings. Keys ascend; a key
//          whose versions do not fit one chunk continues as the first key of the next (its document comes with the
//          last piece).
//   idem   (JSON body) live answers to Idempotency-Keys recorded by commits up to N (in chunks of up to 4096)
//   index  header values (JSON, composites as {"j": canonical JSON}) | u32 keys per value | u32 key ordinals:
//          positions in the table's ascending key list, so loading shares the rows' histories and parses nothing.
//          A value's ordinals ascend (checkpoints written before indexes kept their rows in key order may not: the
//          loader sorts those).
// Only the newest document of each key is in a checkpoint: older ones stay in the log, where the locations point.
// Keys travel as UTF-16 because a key may hold a lone surrogate, which UTF-8 cannot carry; documents are JSON text
// from JSON.stringify, always well formed, so UTF-8 carries them exactly.

import * as path from 'node:path';
import { assert } from '../assert.js';
import { MiB } from '../limits.js';
import type { IndexValue } from './indexes/secondary-index.js';
import { canonicalJson, extractPath } from './json/index.js';
import { CommitTimeline } from './mvcc/commit-timeline.js';
import type { IdempotencyEntry, IdempotencyStore } from './mvcc/idempotency.js';
import { RowHistory, type TableState } from './mvcc/table-state.js';
import type { TableDef } from './types.js';

/**
 * 5: an index lists a row under the values of its versions up to the checkpoint's seq only (format 4 could also list
 * it under a value only a newer, maybe never durable, version held); format 4 still loads, its indexes marked inexact.
 */
const formatVersion = 5;
const formatVersionsLoaded = [4, 5];
/** Idempotency entries per `idem` chunk (each read from its commit's record when the checkpoint is written). */
const idempotencyEntriesPerChunk = 4096;
/** A rows or index chunk is cut once its body passes this size (a chunk is bounded by checkpointChunkBytesMax). */
const chunkBodyBytesTarget = 4 * MiB;
/** Versions of one key per rows chunk at most (16 bytes each), so a long history is cut into pieces. */
const chunkVersionsMax = chunkBodyBytesTarget / 16;
const tsPerChunk = 1 << 20;

/** A checkpoint that cannot serve this log (another format, or segments that are not the log's): replay instead. */
export class CheckpointMismatch extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointMismatch';
  }
}

type Header =
  | { k: 'meta'; v: number; seq: number; segments?: string[] }
  | { k: 'ts'; n: number }
  | { k: 'idem'; n: number }
  | { k: 'table'; def: TableDef }
  | { k: 'rows'; keys: number; versions: number }
  | { k: 'index'; f: string; v: EncodedIndexValue[]; n: number };

type EncodedIndexValue = null | boolean | number | string | { j: string };


export interface DumpInput {
  seq: number;
  tables: TableState[];
  timeline: CommitTimeline;
  /** The log's segment files by ordinal, as the versions' locations name them (read once versions up to seq are placed). */
  segments(): readonly string[];
  idempotency: IdempotencyStore;
}

/**
 * Captures the catalog now (synchronously) and returns chunks produced lazily; versions above `seq` that are
 * applied while the chunks are written are left out, so the dump is the state at exactly `seq`. Every version up to
 * `seq` must be durable (placed in the log) before the chunks are read.
 */
export function dumpCheckpoint(input: DumpInput): Iterable<Buffer> {
  const { seq } = input;
  const tables = input.tables
    .filter((t) => t.def.createdSeq <= seq)
    .map((t) => ({ state: t, def: structuredClone(t.def) }));
  return (function* () {
    yield chunk({ k: 'meta', v: formatVersion, seq, segments: input.segments().map((file) => path.basename(file)) });
    for (let first = 1; first <= seq; first += tsPerChunk) yield dumpTs(input, first, Math.min(seq, first + tsPerChunk - 1));
    // Whole entries, their fingerprints and answers read from their records: a node whose log starts after this
    // checkpoint has no records to read them from. In chunks, so the reads do not hold the event loop all at once.
    const slots = input.idempotency.liveUpTo(seq, Date.now());
    for (let first = 0; first < slots.length; first += idempotencyEntriesPerChunk) {
      const entries = slots.slice(first, first + idempotencyEntriesPerChunk).map((slot) => input.idempotency.entry(slot.user, slot.key, slot));
      yield chunk({ k: 'idem', n: entries.length }, Buffer.from(JSON.stringify(entries)));
    }
    for (const { state, def } of tables) {
      yield chunk({ k: 'table', def });
      const ordinals = def.indexes.length > 0 ? new Map<RowHistory, number>() : null;
      yield* dumpRows(state, seq, ordinals);
      for (const field of def.indexes) yield* dumpIndex(state, seq, field, ordinals!);
    }
  })();
}

function dumpTs(input: DumpInput, first: number, last: number): Buffer {
  const n = last - first + 1;
  const body = Buffer.allocUnsafe(16 * n);
  for (let s = first; s <= last; s++) {
    body.writeDoubleLE(input.timeline.tsOf(s), 8 * (s - first));
    body.writeDoubleLE(input.timeline.locationOf(s), 8 * (n + s - first));
  }
  return chunk({ k: 'ts', n }, body);
}

/** A chunk of rows under construction. */
class RowBatch {
  keys: string[] = [];
  counts: number[] = [];
  meta: number[] = [];
  texts: Array<string | null> = [];
  bodyBytes = 0;

  add(key: string, meta: ArrayLike<number>, text: string | null): void {
    this.keys.push(key);
    this.counts.push(meta.length / 2);
    for (let i = 0; i < meta.length; i++) this.meta.push(meta[i]!);
    this.texts.push(text);
    this.bodyBytes += 8 * meta.length + 12 + 2 * key.length + 3 * (text?.length ?? 0);
  }

  encode(): Buffer {
    const keysText = this.keys.join('');
    const docsText = this.texts.map((text) => text ?? '').join('');
    const rows = this.keys.length;
    const body = Buffer.allocUnsafe(4 * rows + 8 * this.meta.length + 8 * rows + 2 * keysText.length + Buffer.byteLength(docsText, 'utf8'));
    let at = 0;
    for (const n of this.counts) at = body.writeUInt32LE(n, at);
    for (const n of this.meta) at = body.writeDoubleLE(n, at);
    for (const key of this.keys) at = body.writeUInt32LE(key.length, at);
    for (const text of this.texts) {
      assert(text === null || text.length > 0, 'a stored document is never empty text');
      at = body.writeUInt32LE(text === null ? 0 : text.length, at);
    }
    at += body.write(keysText, at, 'utf16le');
    at += body.write(docsText, at, 'utf8');
    assert(at === body.length, 'rows chunk size');
    return chunk({ k: 'rows', keys: rows, versions: this.meta.length / 2 }, body);
  }
}

/** Rows in key order, versions up to `seq` only; records each dumped row's ordinal when the table has indexes. */
function* dumpRows(state: TableState, seq: number, ordinals: Map<RowHistory, number> | null): Iterable<Buffer> {
  let batch = new RowBatch();
  for (const [key, history] of state.rows.entries()) {
    const visible = history.indexAt(seq) + 1;
    if (visible === 0) continue;
    ordinals?.set(history, ordinals.size);
    // The document at `seq`: the newest text, or (when newer versions were applied since) read from the log.
    const text = state.versionOf(history, visible - 1).json;
    // A long history is cut into pieces that each fit a chunk; the loader joins a key's pieces again.
    for (let from = 0; from < visible; ) {
      const to = Math.min(visible, from + chunkVersionsMax);
      const meta = history.meta;
      batch.add(key, Array.isArray(meta) ? meta.slice(2 * from, 2 * to) : meta.subarray(2 * from, 2 * to), to === visible ? text : null);
      from = to;
      if (batch.bodyBytes >= chunkBodyBytesTarget || from < visible) {
        yield batch.encode();
        batch = new RowBatch();
      }
    }
  }
  if (batch.keys.length > 0) yield batch.encode();
}

/**
 * Index entries in value order; rows not among the dumped ones (first written above `seq`) are left out, and so is
 * a row under a value only its versions above `seq` held: a loaded index lists each row under the values of its
 * loaded versions only, which lets a query trust the index for a row of one version (StoredRow.indexedExactly).
 */
function* dumpIndex(state: TableState, seq: number, field: string, ordinals: Map<RowHistory, number>): Iterable<Buffer> {
  const index = state.indexes.get(field);
  if (index === undefined) return;
  // Rows written again since `seq` (while the chunks are produced, rarely more than a few): their values up to it.
  const heldUpToSeq = new Map<RowHistory, Set<string>>();
  const heldBefore = (row: RowHistory, value: IndexValue): boolean => {
    let held = heldUpToSeq.get(row);
    if (held === undefined) heldUpToSeq.set(row, (held = valuesHeld(state, row, seq, index.path)));
    return held.has(value !== null && typeof value === 'object' ? value.json : JSON.stringify(value));
  };
  let values: EncodedIndexValue[] = [];
  let counts: number[] = [];
  let keyOrdinals: number[] = [];
  let bytes = 0;
  const flush = (): Buffer => {
    const body = Buffer.allocUnsafe(4 * (counts.length + keyOrdinals.length));
    let at = 0;
    for (const n of counts) at = body.writeUInt32LE(n, at);
    for (const n of keyOrdinals) at = body.writeUInt32LE(n, at);
    const encoded = chunk({ k: 'index', f: field, v: values, n: keyOrdinals.length }, body);
    values = [];
    counts = [];
    keyOrdinals = [];
    bytes = 0;
    return encoded;
  };
  for (const [value, rows] of index.dump()) {
    const before = keyOrdinals.length;
    for (const row of rows) {
      const ordinal = ordinals.get(row);
      if (ordinal !== undefined && (row.newestSeq <= seq || heldBefore(row, value))) keyOrdinals.push(ordinal);
    }
    if (keyOrdinals.length === before) continue;
    const encoded = encodeIndexValue(value);
    values.push(encoded);
    counts.push(keyOrdinals.length - before);
    bytes += 4 * (1 + keyOrdinals.length - before) + (typeof encoded === 'string' ? 3 * encoded.length : encoded !== null && typeof encoded === 'object' ? 3 * encoded.j.length : 8);
    if (bytes >= chunkBodyBytesTarget) yield flush();
  }
  if (values.length > 0) yield flush();
}

/** The canonical JSON of each value the field at `path` held in the versions of `history` up to `seq`. */
function valuesHeld(state: TableState, history: RowHistory, seq: number, path: readonly string[]): Set<string> {
  const held = new Set<string>();
  const visible = history.indexAt(seq) + 1;
  for (let i = 0; i < visible; i++) {
    const json = state.textOf(history, i);
    const value = json === null ? undefined : extractPath(json, path);
    if (value !== undefined) held.add(canonicalJson(value));
  }
  return held;
}

function chunk(header: Header, body?: Buffer): Buffer {
  const headerText = JSON.stringify(header);
  const headerBytes = Buffer.byteLength(headerText, 'utf8');
  const out = Buffer.allocUnsafe(4 + headerBytes + (body?.length ?? 0));
  out.writeUInt32LE(headerBytes, 0);
  out.write(headerText, 4, 'utf8');
  body?.copy(out, 4 + headerBytes);
  return out;
}

function encodeIndexValue(value: IndexValue): EncodedIndexValue {
  return value !== null && typeof value === 'object' ? { j: value.json } : value;
}

function decodeIndexValue(value: EncodedIndexValue): IndexValue {
  return value !== null && typeof value === 'object' ? { json: value.j } : value;
}

/**
 * Rebuilds the state from a checkpoint's chunks, in order: `chunk` for each, then `finish`. Each table's rows are
 * gathered and built into its row map in one go when the table's rows end; its indexes likewise. A chunk that shows
 * the checkpoint cannot serve this log throws CheckpointMismatch.
 */
export class CheckpointLoader {
  /** Commit time and record location of seq s at [s], filled by the ts chunks; [0] is unused. */
  private tsBySeq = new Float64Array(1);
  private locationBySeq = new Float64Array(1);
  private readonly tables: Map<string, TableState>;
  private readonly makeTable: (def: TableDef) => TableState;
  /** The log's segment files by ordinal now; the checkpoint's must be a prefix of them. */
  private readonly segments: readonly string[];
  private seq = -1;
  private tsFilled = 0;
  private table: TableState | null = null;
  private keys: string[] = [];
  private histories: RowHistory[] = [];
  private rowsLoaded = false;
  /** False for a checkpoint whose indexes may list rows under values of versions it does not hold (format 4). */
  private indexesExact = true;
  /** Entries of the table's indexes, gathered across chunks and loaded when the table ends. */
  private indexEntries = new Map<string, { values: IndexValue[]; rowSets: Array<RowHistory | RowHistory[]> }>();

  private readonly idempotency: IdempotencyStore;

  constructor(options: { tables: Map<string, TableState>; makeTable(def: TableDef): TableState; segments: readonly string[]; idempotency: IdempotencyStore }) {
    this.idempotency = options.idempotency;
    this.tables = options.tables;
    this.makeTable = options.makeTable;
    this.segments = options.segments.map((file) => path.basename(file));
  }

  chunk(payload: Buffer): void {
    const headerBytes = payload.readUInt32LE(0);
    const header = JSON.parse(payload.toString('utf8', 4, 4 + headerBytes)) as Header;
    const body = payload.subarray(4 + headerBytes);
    switch (header.k) {
      case 'meta':
        this.checkMeta(header);
        this.seq = header.seq;
        this.tsBySeq = new Float64Array(header.seq + 1);
        this.locationBySeq = new Float64Array(header.seq + 1).fill(-1);
        return;
      case 'ts':
        assert(body.length === 16 * header.n && this.tsFilled + header.n <= this.seq, 'ts chunk size');
        for (let i = 0; i < header.n; i++) {
          this.tsFilled++;
          this.tsBySeq[this.tsFilled] = body.readDoubleLE(8 * i);
          this.locationBySeq[this.tsFilled] = body.readDoubleLE(8 * (header.n + i));
        }
        return;
      case 'idem':
        for (const entry of JSON.parse(body.toString('utf8')) as IdempotencyEntry[]) this.idempotency.load(entry, Date.now());
        return;
      case 'table':
        this.endTable();
        this.table = this.makeTable(header.def);
        if (!this.indexesExact) this.table.indexesExact = false;
        this.tables.set(header.def.name, this.table);
        return;
      case 'rows':
        assert(this.table !== null && !this.rowsLoaded, 'rows outside a table or after its indexes');
        this.loadRows(header.keys, header.versions, body);
        return;
      case 'index':
        this.loadIndex(header.f, header.v.map(decodeIndexValue), header.n, body);
        return;
    }
  }

  /** Ends the load; answers the commit times and record locations it held. */
  finish(): CommitTimeline {
    this.endTable();
    assert(this.tsFilled === this.seq, `checkpoint holds ${this.tsFilled} commit times for seq ${this.seq}`);
    return new CommitTimeline(this.tsBySeq, this.locationBySeq);
  }

  private checkMeta(header: Extract<Header, { k: 'meta' }>): void {
    if (!formatVersionsLoaded.includes(header.v)) throw new CheckpointMismatch(`checkpoint format ${header.v}, not ${formatVersion}`);
    this.indexesExact = header.v >= 5;
    const segments = header.segments ?? [];
    const differs = segments.findIndex((name, i) => this.segments[i] !== name);
    if (differs >= 0) {
      throw new CheckpointMismatch(`its log segment ${differs} is ${segments[differs]}, the log's is ${this.segments[differs] ?? 'missing'}`);
    }
  }

  private loadRows(keyCount: number, versionCount: number, body: Buffer): void {
    let at = 0;
    const counts = new Array<number>(keyCount);
    for (let i = 0; i < keyCount; i++, at += 4) counts[i] = body.readUInt32LE(at);
    const metaAt = at;
    const keyLengthsAt = metaAt + 16 * versionCount;
    const docLengthsAt = keyLengthsAt + 4 * keyCount;
    let keyCharsTotal = 0;
    for (let i = 0; i < keyCount; i++) keyCharsTotal += body.readUInt32LE(keyLengthsAt + 4 * i);
    const keysAt = docLengthsAt + 4 * keyCount;
    const keysText = body.toString('utf16le', keysAt, keysAt + 2 * keyCharsTotal);
    const docsText = body.toString('utf8', keysAt + 2 * keyCharsTotal);
    // One aligned copy of the packed numbers, read as doubles; a per-key slice becomes that key's packed array.
    const packed = new Float64Array(body.buffer.slice(body.byteOffset + metaAt, body.byteOffset + keyLengthsAt));
    let keyChar = 0;
    let docChar = 0;
    let version = 0;
    for (let i = 0; i < keyCount; i++) {
      const keyLength = body.readUInt32LE(keyLengthsAt + 4 * i);
      const key = keysText.slice(keyChar, (keyChar += keyLength));
      const docLength = body.readUInt32LE(docLengthsAt + 4 * i);
      const json = docLength === 0 ? null : docsText.slice(docChar, (docChar += docLength));
      this.addHistory(key, packed.subarray(2 * version, 2 * (version += counts[i]!)), json);
    }
    assert(version === versionCount && keyChar === keysText.length && docChar === docsText.length, 'rows chunk lengths do not add up');
  }

  private addHistory(key: string, meta: Float64Array, json: string | null): void {
    const last = this.keys.length - 1;
    if (last >= 0 && this.keys[last] === key) {
      const history = this.histories[last]!;
      history.grow(meta);
      history.json = json;
      return;
    }
    this.keys.push(key);
    this.histories.push(new RowHistory(key, json, meta));
  }

  private loadIndex(field: string, values: IndexValue[], keyTotal: number, body: Buffer): void {
    assert(this.table !== null && this.table.indexes.has(field), `checkpoint index ${field} has no table index`);
    this.endRows();
    assert(body.length === 4 * (values.length + keyTotal), 'index chunk size');
    let entries = this.indexEntries.get(field);
    if (entries === undefined) this.indexEntries.set(field, (entries = { values: [], rowSets: [] }));
    let at = 4 * values.length;
    for (let i = 0; i < values.length; i++) {
      const count = body.readUInt32LE(4 * i);
      entries.values.push(values[i]!);
      if (count === 1) {
        entries.rowSets.push(this.rowAt(body.readUInt32LE(at)));
        at += 4;
        continue;
      }
      const ordinals = new Uint32Array(count);
      let ascending = true;
      for (let n = 0; n < count; n++, at += 4) {
        ordinals[n] = body.readUInt32LE(at);
        if (n > 0 && ordinals[n]! <= ordinals[n - 1]!) ascending = false;
      }
      // Ordinals follow key order, and an index keeps each value's rows in key order.
      if (!ascending) ordinals.sort();
      const rows = new Array<RowHistory>(count);
      for (let n = 0; n < count; n++) rows[n] = this.rowAt(ordinals[n]!);
      entries.rowSets.push(rows);
    }
  }

  private rowAt(ordinal: number): RowHistory {
    const row = this.histories[ordinal];
    assert(row !== undefined, `index key ordinal ${ordinal} beyond the table's ${this.histories.length} keys`);
    return row;
  }

  /** The table's rows are complete: build its row map (the histories stay for its index chunks). */
  private endRows(): void {
    if (this.rowsLoaded || this.table === null) return;
    this.rowsLoaded = true;
    this.table.loadSortedRows(this.keys, this.histories);
  }

  private endTable(): void {
    this.endRows();
    for (const [field, entries] of this.indexEntries) this.table!.indexes.get(field)!.loadSorted(entries.values, entries.rowSets);
    this.indexEntries.clear();
    this.table = null;
    this.keys = [];
    this.histories = [];
    this.rowsLoaded = false;
  }
}

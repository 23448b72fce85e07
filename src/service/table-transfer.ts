// `driftdb export` and `driftdb import`: a table as NDJSON, one JSON value per line. The current state (or the state
// as of a seq) is one document per line; with history, one version per line, {key, seq, ts, op, doc}, in commit
// order. Import loads such a file in batched transactions: all of a batch or nothing.

import type { Database, Doc, Transaction } from '../engine/index.js';
import { isDriftError } from '../errors.js';

/** Rows fetched per page while exporting. */
const exportPageRows = 1000;
/** A batch's documents stay under this many bytes of JSON, well below a transaction's 32 MiB. */
export const importBatchBytesMax = 8 * 1024 * 1024;
export const importBatchRowsDefault = 1000;
/** A transaction holds at most 10,000 rows (limits.transactionWritesMax). */
export const importBatchRowsMax = 10_000;

export interface TransferProgress {
  /** Lines written (export) or committed (import) so far. */
  lines: number;
  done: boolean;
}

export interface ExportOptions {
  table: string;
  /** A seq or an RFC 3339 instant: the table as it was then (with history: the versions up to then). */
  asOf?: string;
  history: boolean;
  write(line: string): void | Promise<void>;
  onProgress?(progress: TransferProgress): void;
}

/** Writes the table's lines through `write`; answers how many. */
export async function exportTable(db: Database, options: ExportOptions): Promise<number> {
  db.getTable(options.table);
  const lines = options.history ? await exportHistory(db, options) : await exportCurrent(db, options);
  options.onProgress?.({ lines, done: true });
  return lines;
}

/** Every live row at one snapshot (the first page's, which the cursor pins), as its stored JSON text. */
async function exportCurrent(db: Database, options: ExportOptions): Promise<number> {
  let lines = 0;
  let cursor: string | null = null;
  do {
    const page = db.scan({ table: options.table, limit: exportPageRows, ...(cursor === null ? asOfMember(options.asOf) : { cursor }) });
    for (const json of page.rowsJson ?? page.rows.map((row) => JSON.stringify(row))) {
      await options.write(json);
      lines++;
    }
    options.onProgress?.({ lines, done: false });
    cursor = page.nextCursor;
  } while (cursor !== null);
  return lines;
}

/**
 * Every version (deletes included) up to the snapshot, in commit order. The keys come from a history query (every
 * key's first version is a put, which it lists); each key's versions from its history; then, sorted by seq, each
 * document is read back at its own seq. Memory holds the keys and about 30 bytes per version, not the documents.
 */
async function exportHistory(db: Database, options: ExportOptions): Promise<number> {
  const snapshotSeq = db.scan({ table: options.table, limit: 1, ...asOfMember(options.asOf) }).seq;
  const keys = historyKeys(db, options.table, snapshotSeq);
  const versions = { seq: [] as number[], ts: [] as number[], key: [] as number[], deleted: [] as boolean[] };
  keys.forEach((key, keyIndex) => {
    for (const version of db.history({ table: options.table, key }).versions) {
      if (version.seq > snapshotSeq) break;
      versions.seq.push(version.seq);
      versions.ts.push(version.ts);
      versions.key.push(keyIndex);
      versions.deleted.push(version.op === 'delete');
    }
  });
  const order = versions.seq.map((_, i) => i).sort((a, b) => versions.seq[a]! - versions.seq[b]!);
  let lines = 0;
  for (const i of order) {
    const key = keys[versions.key[i]!]!;
    const seq = versions.seq[i]!;
    const doc = versions.deleted[i] ? 'null' : db.get({ table: options.table, key, asOf: seq }).json;
    const ts = new Date(versions.ts[i]!).toISOString();
    // The op is put or delete: a patch's version holds the whole document after it, which is what a put writes.
    await options.write(`{"key":${JSON.stringify(key)},"seq":${seq},"ts":"${ts}","op":"${versions.deleted[i] ? 'delete' : 'put'}","doc":${doc}}`);
    lines++;
    if (lines % exportPageRows === 0) options.onProgress?.({ lines, done: false });
  }
  return lines;
}

function historyKeys(db: Database, table: string, snapshotSeq: number): string[] {
  const keys: string[] = [];
  let cursor: string | null = null;
  do {
    const page = db.query({ table, history: true, limit: exportPageRows, ...(cursor === null ? { asOf: snapshotSeq } : { cursor }) });
    for (const row of page.rows) {
      const key = (row as { key: string }).key;
      if (keys[keys.length - 1] !== key) keys.push(key);
    }
    cursor = page.nextCursor;
  } while (cursor !== null);
  return keys;
}

function asOfMember(asOf: string | undefined): { asOf?: string } {
  return asOf === undefined ? {} : { asOf };
}

// ---- import -----------------------------------------------------------------------------------------------

export interface ImportOptions {
  table: string;
  /** Lines are versions {key, op, doc} replayed in order, each version its own commit of the key. */
  history: boolean;
  batchRows: number;
  lines: AsyncIterable<string>;
  onProgress?(progress: TransferProgress): void;
}

/** A line the import refused, or a batch the database refused; nothing of `batchFirstLine`.. was written. */
export class ImportError extends Error {
  constructor(
    readonly line: number,
    readonly detail: string,
    readonly batchFirstLine: number,
    readonly committedLines: number,
  ) {
    super(`line ${line}: ${detail}`);
    this.name = 'ImportError';
  }
}

interface PendingWrite {
  line: number;
  key: string;
  doc: Doc | null;
  bytes: number;
}

/** Loads the lines into the table, a batch per transaction; answers how many rows (or versions) it wrote. */
export async function importTable(db: Database, options: ImportOptions): Promise<number> {
  const primaryKey = db.getTable(options.table).primaryKey;
  let batch: PendingWrite[] = [];
  let batchKeys = new Set<string>();
  let batchBytes = 0;
  let committed = 0;
  let lineNumber = 0;
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    await writeBatch(db, options.table, batch, committed);
    committed += batch.length;
    options.onProgress?.({ lines: committed, done: false });
    batch = [];
    batchKeys = new Set();
    batchBytes = 0;
  };
  for await (const text of options.lines) {
    lineNumber++;
    if (text.trim() === '') continue;
    const write = parseLine(text, { line: lineNumber, history: options.history, primaryKey, batchFirstLine: batch[0]?.line ?? lineNumber, committed });
    // History: a key already in this batch starts the next one, so each of its versions is a commit of its own.
    const full = batch.length >= options.batchRows || batchBytes + write.bytes > importBatchBytesMax || (options.history && batchKeys.has(write.key));
    if (full) await flush();
    batch.push(write);
    batchKeys.add(write.key);
    batchBytes += write.bytes;
  }
  await flush();
  options.onProgress?.({ lines: committed, done: true });
  return committed;
}

function parseLine(text: string, at: { line: number; history: boolean; primaryKey: string; batchFirstLine: number; committed: number }): PendingWrite {
  const refuse = (detail: string): never => {
    throw new ImportError(at.line, detail, at.batchFirstLine, at.committed);
  };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return refuse(`not valid JSON (${(error as Error).message})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return refuse('not a JSON object');
  if (!at.history) {
    const key = keyOf((value as Doc)[at.primaryKey]);
    if (key === null) return refuse(`no "${at.primaryKey}" member that is a string or a safe integer (the table's primary key)`);
    return { line: at.line, key, doc: value as Doc, bytes: text.length };
  }
  const version = value as { key?: unknown; op?: unknown; doc?: unknown };
  if (typeof version.key !== 'string' || version.key === '') return refuse('a version needs a "key" string');
  if (version.op === 'delete') return { line: at.line, key: version.key, doc: null, bytes: text.length };
  if (version.op !== 'put' && version.op !== 'patch') return refuse('a version\'s "op" is put, patch or delete');
  if (version.doc === null || typeof version.doc !== 'object' || Array.isArray(version.doc)) return refuse(`a ${version.op} version needs a "doc" object`);
  return { line: at.line, key: version.key, doc: version.doc as Doc, bytes: text.length };
}

function keyOf(value: unknown): string | null {
  if (typeof value === 'string' && value !== '') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  return null;
}

/** One transaction: every write of the batch, then commit; a refused write rolls all of them back. */
async function writeBatch(db: Database, table: string, batch: PendingWrite[], committed: number): Promise<void> {
  const tx: Transaction = db.begin({ isolation: 'read_committed' });
  let current = batch[0]!;
  try {
    for (const write of batch) {
      current = write;
      if (write.doc === null) await db.delete({ table, key: write.key, tx });
      else await db.put({ table, key: write.key, doc: write.doc, tx });
    }
    await tx.commit();
  } catch (error) {
    if (tx.state === 'active') tx.rollback();
    if (!isDriftError(error)) throw error;
    const detail = error.code === 'validation_failed' || error.code === 'row_not_found' || error.code === 'payload_too_large' ? error.message : `${error.code}: ${error.message}`;
    throw new ImportError(current.line, detail, batch[0]!.line, committed);
  }
}

// What a time-travel database does with whole tables (http-api.md §9): the diff of a table between two seqs, paged
// in key order; a fork of a table as of a seq into a new table; a restore of a table to its rows as of a seq. A fork
// and a restore are each one commit, so a crash leaves all of it or none.

import { DriftError } from '../errors.js';
import { limits } from '../limits.js';
import type { TableInfo } from './api.js';
import { jsonEquals } from './json/value.js';
import { decodeCursor, encodeCursor, fingerprintOf } from './query/cursor.js';
import type { TableState } from './mvcc/table-state.js';
import type { Change, Json } from './types.js';

export interface DiffInput {
  table: string;
  from: number;
  to: number;
  limit?: number | undefined;
  cursor?: string | undefined;
}

export interface DiffChange {
  key: string;
  change: 'added' | 'removed' | 'changed';
  /** The document at `from` as stored JSON text (null when absent there). */
  before: string | null;
  after: string | null;
}

export interface DiffPage {
  from: number;
  to: number;
  changes: DiffChange[];
  nextCursor: string | null;
}

/** Keys one diff page looks at, changed or not: a page of a large table with few changes ends early, with a cursor. */
const diffKeysExaminedMax = 100_000;

/** A page of the rows that differ between the table's states at `from` and `to` (both visible seqs, from ≤ to). */
export function diffTable(table: TableState, input: DiffInput, newestSeq: number): DiffPage {
  const { from, to } = input;
  for (const [name, seq] of [['from', from], ['to', to]] as const) {
    if (!Number.isSafeInteger(seq) || seq < 0) throw new DriftError('validation_failed', `${name} must be a non-negative seq.`);
    if (seq > newestSeq) throw new DriftError('validation_failed', `${name} ${seq} is beyond the newest committed seq ${newestSeq}.`, { newestSeq });
  }
  if (from > to) throw new DriftError('validation_failed', `from (${from}) must not be after to (${to}).`);
  const limit = input.limit ?? limits.pageLimitDefault;
  const fingerprint = fingerprintOf({ diff: table.def.name, created: table.def.createdSeq, from });
  let after: string | undefined;
  if (input.cursor !== undefined) {
    const cursor = decodeCursor(input.cursor);
    if (cursor.seq !== to || cursor.fingerprint !== fingerprint || cursor.position.kind !== 'key') {
      throw new DriftError('validation_failed', 'The cursor belongs to another diff.', { errors: [{ instancePath: '/cursor', message: 'was made for another table or other seqs' }] });
    }
    after = cursor.position.key;
  }
  const changes: DiffChange[] = [];
  let bytes = 0;
  let examined = 0;
  let lastKey: string | null = null;
  let more = false;
  for (const [key, history] of table.rows.entries(after === undefined ? {} : { after })) {
    if (changes.length >= limit || examined >= diffKeysExaminedMax || (changes.length > 0 && bytes > limits.pageBytesMax)) {
      more = true;
      break;
    }
    examined++;
    lastKey = key;
    const atFrom = history.indexAt(from);
    const atTo = history.indexAt(to);
    // The same version at both points (or none at either): unchanged, and no document need be read.
    if (atFrom === atTo) continue;
    const before = atFrom < 0 ? null : table.versionOf(history, atFrom).json;
    const afterJson = atTo < 0 ? null : table.versionOf(history, atTo).json;
    if (sameDocument(before, afterJson)) continue;
    changes.push({ key, change: before === null ? 'added' : afterJson === null ? 'removed' : 'changed', before, after: afterJson });
    bytes += (before?.length ?? 0) + (afterJson?.length ?? 0);
  }
  const nextCursor = more && lastKey !== null ? encodeCursor({ seq: to, fingerprint, position: { kind: 'key', key: lastKey } }) : null;
  return { from, to, changes, nextCursor };
}

/**
 * The changes of a fork: the new table (the source's primary key, schema and indexes, and where it came from) and
 * a put of every row the source held at `asOf`, to be committed together. Bounded by what one commit can hold.
 */
export function forkChanges(source: TableState, name: string, asOf: number): Change[] {
  const changes: Change[] = [
    {
      kind: 'createTable',
      name,
      primaryKey: source.def.primaryKey,
      indexes: [...source.def.indexes],
      ...(source.def.schema !== undefined ? { schema: source.def.schema } : {}),
      forkedFrom: { table: source.def.name, seq: asOf },
    },
  ];
  const bytes = new CommitBytes('fork');
  for (const [key, history] of source.rows.entries()) {
    const at = history.indexAt(asOf);
    if (at < 0) continue;
    const json = source.versionOf(history, at).json;
    if (json === null) continue;
    bytes.add(key, json);
    changes.push({ kind: 'row', table: name, key, op: 'put', doc: json });
  }
  return changes;
}

/** The row writes that make the table's newest rows equal to its rows at `asOf`: puts and deletes, key order. */
export function restoreWrites(table: TableState, asOf: number): Array<{ key: string; json: string | null }> {
  const writes: Array<{ key: string; json: string | null }> = [];
  const bytes = new CommitBytes('restore');
  for (const [key, history] of table.rows.entries()) {
    const at = history.indexAt(asOf);
    const then = at < 0 ? null : table.versionOf(history, at).json;
    if (sameDocument(then, history.json)) continue;
    bytes.add(key, then ?? '');
    writes.push({ key, json: then });
  }
  return writes;
}

/**
 * Whether two stored versions hold the same document (or are both absent). The same text is the same document; texts
 * that differ may still be the same JSON value, their members written in another order, and such a row is unchanged.
 */
function sameDocument(a: string | null, b: string | null): boolean {
  if (a === b) return true;
  if (a === null || b === null) return false;
  return jsonEquals(JSON.parse(a) as Json, JSON.parse(b) as Json);
}

/** Counts what a fork or restore would put into its one commit record, and refuses it past recordBytesMax. */
class CommitBytes {
  private bytes = 0;

  constructor(private readonly what: 'fork' | 'restore') {}

  add(key: string, json: string): void {
    this.bytes += 2 * key.length + json.length + 16;
    if (this.bytes > limits.recordBytesMax) {
      throw new DriftError(
        'bad_request',
        `This ${this.what} would write more than ${limits.recordBytesMax / (1024 * 1024)} MiB of rows, more than one commit can hold ` +
          '(a fork or restore is one commit, so that a crash leaves all of it or none).',
      );
    }
  }
}

export type { TableInfo };

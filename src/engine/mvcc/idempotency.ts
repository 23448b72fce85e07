// Idempotency keys (http-api.md §9): the first answer to a write sent with a key, kept with the commit that wrote it
// (a change of that commit's record), so a retry after a crash or a lost answer is never applied twice. Entries
// live until they expire, within a bound on their number and size; the oldest go first. Memory holds where each
// entry's commit is; its fingerprint and answer are read back from that commit's record when a key is repeated (or
// a checkpoint is written), except for entries loaded from a checkpoint, whose records the log may not hold.

import { limits } from '../../limits.js';
import type { TableInfo } from '../api.js';
import type { CommitRecord } from '../types.js';

/** What a commit records for an idempotency key: who sent it, what request it was, and the answer to replay. */
export interface IdempotencyEntry {
  user: string;
  key: string;
  /** A hash of the request (method, path, body bytes): a different request with the same key is refused. */
  fingerprint: string;
  /** The answer as it was sent, as a text the engine keeps as it is (the service's encoding of it). */
  answer: string;
  /** Ms since the epoch after which the entry no longer counts. */
  expiresAt: number;
  /** The commit that recorded it. */
  seq: number;
}

/** An entry on its way into a commit: its answer is known only once the commit has its seq. */
export interface IdempotencyRequest {
  user: string;
  key: string;
  fingerprint: string;
  expiresAt: number;
  /** The answer's text, once the commit that records it is decided. */
  answer(outcome: CommitOutcome): string;
}

/** What an answer may need of its commit. */
export interface CommitOutcome {
  /** The commit's seq. */
  seq: number;
  /**
   * Rows the commit writes. A commit that writes none (a read-only transaction's, a restore with nothing to
   * change) answers seq null: its record holds only the idempotency entry.
   */
  rowsWritten: number;
  /** For a row write: whether it created the row. */
  created?: boolean;
  /** For a fork: the new table. */
  table?: TableInfo;
}

/**
 * What the store keeps of an entry: whose key it is, the commit that recorded it, its expiry and its answer's size.
 * The fingerprint and the answer stay in that commit's record, read back on the rare repeat: kept in memory for a day
 * of keys, every keyed write's texts outlived the young generation and made the collector copy and mark them.
 */
export interface IdempotencySlot {
  user: string;
  key: string;
  seq: number;
  expiresAt: number;
  /** The answer's characters, for the bound on the answers kept live. */
  answerChars: number;
}

export class IdempotencyStore {
  /** The commit record of a seq (durable and placed), where an entry's fingerprint and answer are. */
  private readonly readRecord: (seq: number) => CommitRecord;
  /** By user NUL key, the entry's position in the queue below (counted from its start: `base` + index). */
  private readonly entries = new Map<string, number>();
  /** Fingerprint NUL answer of entries loaded from a checkpoint, by user NUL key. */
  private readonly loaded = new Map<string, string>();
  /**
   * The entries in the order they were recorded (the order they expire in, one TTL at a time) from `head` on: a queue
   * beside the map, because walking a Map emptied from its front gets slower with every deletion. A slot is current
   * while the map points at it. Its ids are strings; its numbers (seq, expiry, answer size: slotNumbers per slot) are
   * in a Float64Array, outside the collected heap, so a keyed write adds no array growth for the young generation to
   * copy and promote.
   */
  private ids: string[] = [];
  private numbers = new Float64Array(slotNumbers * 1024);
  private base = 0;
  private head = 0;
  private chars = 0;

  constructor(readRecord: (seq: number) => CommitRecord) {
    this.readRecord = readRecord;
  }

  /** The commit and expiry of `user`'s `key`, unless there is none or it expired by `now`. Reads nothing. */
  slot(user: string, key: string, now: number): { seq: number; expiresAt: number } | null {
    const position = this.entries.get(entryId(user, key));
    if (position === undefined) return null;
    const at = slotNumbers * (position - this.base);
    const expiresAt = this.numbers[at + 1]!;
    return expiresAt <= now ? null : { seq: this.numbers[at]!, expiresAt };
  }

  /** The whole entry of `user`'s `key` recorded at `seq` (a slot's): from the checkpoint it came from, or its record. */
  entry(user: string, key: string, slot: { seq: number; expiresAt: number }): IdempotencyEntry {
    const loaded = this.loaded.get(entryId(user, key));
    if (loaded !== undefined) {
      const split = loaded.indexOf('\u0000');
      return { user, key, fingerprint: loaded.slice(0, split), answer: loaded.slice(split + 1), expiresAt: slot.expiresAt, seq: slot.seq };
    }
    for (const change of this.readRecord(slot.seq).changes) {
      if (change.kind === 'idempotency' && change.user === user && change.key === key) {
        return { user, key, fingerprint: change.fingerprint, answer: change.answer, expiresAt: change.expiresAt, seq: slot.seq };
      }
    }
    throw new Error(`the commit record of seq ${slot.seq} holds no entry for an Idempotency-Key it recorded`);
  }

  /** Records an entry (a commit's change, or one loaded from a checkpoint), dropping expired and excess ones. */
  record(slot: IdempotencySlot, now: number): void {
    const id = entryId(slot.user, slot.key);
    const previous = this.entries.get(id);
    if (previous !== undefined) {
      this.chars -= this.numbers[slotNumbers * (previous - this.base) + 2]!;
      // A repeated id is deleted first so the map's order stays the order of recording.
      this.entries.delete(id);
      this.loaded.delete(id);
    }
    const at = slotNumbers * this.ids.length;
    if (at === this.numbers.length) {
      const grown = new Float64Array(2 * this.numbers.length);
      grown.set(this.numbers);
      this.numbers = grown;
    }
    this.entries.set(id, this.base + this.ids.length);
    this.ids.push(id);
    this.numbers[at] = slot.seq;
    this.numbers[at + 1] = slot.expiresAt;
    this.numbers[at + 2] = slot.answerChars;
    this.chars += slot.answerChars;
    this.prune(now);
  }

  /** Records an entry a checkpoint holds whole: its record may be below the start of this node's log. */
  load(entry: IdempotencyEntry, now: number): void {
    this.record({ user: entry.user, key: entry.key, seq: entry.seq, expiresAt: entry.expiresAt, answerChars: entry.answer.length }, now);
    const id = entryId(entry.user, entry.key);
    if (this.entries.has(id)) this.loaded.set(id, [entry.fingerprint, entry.answer].join('\u0000'));
  }

  /** The slots of every live entry recorded by a commit up to `seq`, for a checkpoint at `seq` (entry() reads them). */
  liveUpTo(seq: number, now: number): IdempotencySlot[] {
    const live: IdempotencySlot[] = [];
    for (const [id, position] of this.entries) {
      const at = slotNumbers * (position - this.base);
      const slotSeq = this.numbers[at]!;
      const expiresAt = this.numbers[at + 1]!;
      if (slotSeq > seq || expiresAt <= now) continue;
      const split = id.indexOf('\u0000');
      live.push({ user: id.slice(0, split), key: id.slice(split + 1), seq: slotSeq, expiresAt, answerChars: this.numbers[at + 2]! });
    }
    return live;
  }

  get size(): number {
    return this.entries.size;
  }

  private prune(now: number): void {
    while (this.head < this.ids.length) {
      const id = this.ids[this.head]!;
      // A slot whose id was recorded again later (or already dropped) is stale: the newer slot decides.
      if (this.entries.get(id) === this.base + this.head) {
        const excess = this.entries.size > limits.idempotencyEntriesMax || this.chars > limits.idempotencyAnswerCharsMax;
        const at = slotNumbers * this.head;
        if (!excess && this.numbers[at + 1]! > now) break;
        this.entries.delete(id);
        this.loaded.delete(id);
        this.chars -= this.numbers[at + 2]!;
      }
      this.head++;
    }
    if (this.head > 1024 && this.head > this.ids.length / 2) {
      this.ids = this.ids.slice(this.head);
      this.numbers.copyWithin(0, slotNumbers * this.head, slotNumbers * (this.head + this.ids.length));
      this.base += this.head;
      this.head = 0;
    }
  }
}

/** Numbers per queue slot: its commit's seq, its expiry, its answer's characters. */
const slotNumbers = 3;

function entryId(user: string, key: string): string {
  return `${user}\u0000${key}`;
}

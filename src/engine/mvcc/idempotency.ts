// Idempotency keys (http-api.md §9): the first answer to a write sent with a key, kept with the commit that wrote it
// (a change of that commit's record), so a retry after a crash or a lost answer is never applied twice. Entries
// live until they expire, within a bound on their number and size; the oldest go first.

import { limits } from '../../limits.js';
import type { TableInfo } from '../api.js';

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

export class IdempotencyStore {
  /**
   * By user and key, each entry packed into one string (expiresAt, seq, fingerprint, answer): up to a hundred
   * thousand entries live for a day, and strings cost the garbage collector nothing to trace, where an object
   * per entry made every major collection walk them all.
   */
  private readonly entries = new Map<string, string>();
  /**
   * Entry ids in the order they were recorded (the order they expire in, one TTL at a time) from `head` on, with
   * their packed entries and expiry: a queue beside the map, because walking a Map emptied from its front gets slower
   * with every deletion. A slot is current while the map holds that very packed string for its id.
   */
  private order: string[] = [];
  private orderPacked: string[] = [];
  private orderExpiresAt: number[] = [];
  private head = 0;
  private chars = 0;

  /** The stored entry for `user`'s `key`, unless it expired by `now`. */
  lookup(user: string, key: string, now: number): IdempotencyEntry | null {
    const packed = this.entries.get(entryId(user, key));
    if (packed === undefined) return null;
    const entry = unpack(user, key, packed);
    return entry.expiresAt <= now ? null : entry;
  }

  /** Records an entry (a commit's change, or one loaded from a checkpoint), dropping expired and excess ones. */
  record(entry: IdempotencyEntry, now: number): void {
    const id = entryId(entry.user, entry.key);
    const previous = this.entries.get(id);
    if (previous !== undefined) {
      this.chars -= previous.length;
      // A repeated id is deleted first so the map's order stays the order of recording.
      this.entries.delete(id);
    }
    // join makes one flat string; a template would keep a tree of string pieces per entry for the collector to copy.
    const packed = [entry.expiresAt, entry.seq, entry.fingerprint, entry.answer].join('\u0000');
    this.entries.set(id, packed);
    this.order.push(id);
    this.orderPacked.push(packed);
    this.orderExpiresAt.push(entry.expiresAt);
    this.chars += packed.length;
    this.prune(now);
  }

  /** Every live entry recorded by a commit up to `seq`, for a checkpoint at `seq`. */
  liveUpTo(seq: number, now: number): IdempotencyEntry[] {
    const live: IdempotencyEntry[] = [];
    for (const [id, packed] of this.entries) {
      const split = id.indexOf('\u0000');
      const entry = unpack(id.slice(0, split), id.slice(split + 1), packed);
      if (entry.seq <= seq && entry.expiresAt > now) live.push(entry);
    }
    return live;
  }

  get size(): number {
    return this.entries.size;
  }

  private prune(now: number): void {
    while (this.head < this.order.length) {
      const id = this.order[this.head]!;
      const packed = this.entries.get(id);
      // A slot whose id was recorded again later (or already dropped) is stale: the newer slot decides. The same
      // string object compares at once, without reading the entry.
      if (packed !== undefined && packed === this.orderPacked[this.head]) {
        const excess = this.entries.size > limits.idempotencyEntriesMax || this.chars > limits.idempotencyAnswerCharsMax;
        if (!excess && this.orderExpiresAt[this.head]! > now) break;
        this.entries.delete(id);
        this.chars -= packed.length;
      }
      this.orderPacked[this.head] = '';
      this.head++;
    }
    if (this.head > 1024 && this.head > this.order.length / 2) {
      this.order = this.order.slice(this.head);
      this.orderPacked = this.orderPacked.slice(this.head);
      this.orderExpiresAt = this.orderExpiresAt.slice(this.head);
      this.head = 0;
    }
  }
}

function entryId(user: string, key: string): string {
  return `${user}\u0000${key}`;
}

function unpack(user: string, key: string, packed: string): IdempotencyEntry {
  const first = packed.indexOf('\u0000');
  const second = packed.indexOf('\u0000', first + 1);
  const third = packed.indexOf('\u0000', second + 1);
  return {
    user,
    key,
    expiresAt: Number(packed.slice(0, first)),
    seq: Number(packed.slice(first + 1, second)),
    fingerprint: packed.slice(second + 1, third),
    answer: packed.slice(third + 1),
  };
}

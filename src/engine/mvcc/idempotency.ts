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
  /** The answer as it was sent, JSON text of { status, body, headers }. */
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
  /** The answer's JSON text, once the commit that records it is decided. */
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
  /** By user and key. */
  private readonly entries = new Map<string, IdempotencyEntry>();
  /**
   * The entries in the order they were recorded, which is the order they expire in (one TTL at a time), from
   * `head` on. A queue beside the map, because walking a Map emptied from its front gets slower with every deletion.
   */
  private order: IdempotencyEntry[] = [];
  private head = 0;
  private chars = 0;

  /** The stored entry for `user`'s `key`, unless it expired by `now`. */
  lookup(user: string, key: string, now: number): IdempotencyEntry | null {
    const entry = this.entries.get(entryId(user, key));
    return entry === undefined || entry.expiresAt <= now ? null : entry;
  }

  /** Records an entry (a commit's change, or one loaded from a checkpoint), dropping expired and excess ones. */
  record(entry: IdempotencyEntry, now: number): void {
    const id = entryId(entry.user, entry.key);
    const previous = this.entries.get(id);
    if (previous !== undefined) {
      this.entries.delete(id);
      this.chars -= previous.answer.length;
    }
    this.entries.set(id, entry);
    this.order.push(entry);
    this.chars += entry.answer.length;
    this.prune(now);
  }

  /** Every live entry recorded by a commit up to `seq`, for a checkpoint at `seq`. */
  liveUpTo(seq: number, now: number): IdempotencyEntry[] {
    return [...this.entries.values()].filter((entry) => entry.seq <= seq && entry.expiresAt > now);
  }

  get size(): number {
    return this.entries.size;
  }

  private prune(now: number): void {
    while (this.head < this.order.length) {
      const entry = this.order[this.head]!;
      const id = entryId(entry.user, entry.key);
      if (this.entries.get(id) === entry) {
        const excess = this.entries.size > limits.idempotencyEntriesMax || this.chars > limits.idempotencyAnswerCharsMax;
        if (!excess && entry.expiresAt > now) break;
        this.entries.delete(id);
        this.chars -= entry.answer.length;
      }
      this.head++;
    }
    if (this.head > 1024 && this.head > this.order.length / 2) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
  }
}

function entryId(user: string, key: string): string {
  return `${user}\u0000${key}`;
}

// The change feed (http-api.md §9): durable commits in seq order, the newest from a small ring, older ones read back
// from the log by their record's location, each filtered for one caller (the tables asked for, never the system
// tables unless named, the caller's row policies); and subscriptions that hear of each commit once it is durable.

import { DriftError } from '../errors.js';
import { limits } from '../limits.js';
import type { RowPolicies } from './api.js';
import { oncePerTurn } from './once-per-turn.js';
import { StoredRow } from './query/index.js';
import type { Store } from './store.js';
import type { CommitRecord, RowOp } from './types.js';

export interface FeedChange {
  table: string;
  key: string;
  op: RowOp;
  /** The whole new document as its stored JSON text; null for a delete. */
  json: string | null;
}

export interface FeedCommit {
  readonly seq: number;
  readonly ts: number;
  readonly changes: readonly FeedChange[];
}

export interface ChangesInput {
  /** Commits after this seq (exclusive; 0 = from the start). */
  since: number;
  /** Commits at most (each whole). */
  limit: number;
  /** Only rows of these tables; null = every table but the system ones. */
  tables: ReadonlySet<string> | null;
  /** The caller's row policies: a change is shown only if its document (a delete: the version before) is readable. */
  policies?: RowPolicies | undefined;
}

export interface ChangesPage {
  commits: FeedCommit[];
  /** Where the next page starts (the last commit looked at, shown or not). */
  nextSince: number;
}

function recordChars(record: CommitRecord): number {
  let chars = 0;
  for (const change of record.changes) if (change.kind === 'row') chars += change.key.length + (change.doc?.length ?? 0);
  return chars;
}

/**
 * The record as the ring keeps it: the feed shows only rows, so an Idempotency-Key's entry (its answer and fingerprint)
 * is not kept alive there for the ring's thousand commits, long enough to outlive a young collection.
 */
function rowsOnly(record: CommitRecord): CommitRecord {
  if (record.changes.every((change) => change.kind === 'row')) return record;
  return { seq: record.seq, ts: record.ts, changes: record.changes.filter((change) => change.kind === 'row') };
}

export class ChangeFeed {
  private readonly store: Store;
  /**
   * The newest durable commits, oldest first, from index `recentFirst` on, kept while someone subscribes: live
   * subscribers and recent pages read them without the log. Dropped entries are cleared in place and the array is compacted once they fill its first
   * half: a splice per commit moved the whole ring on every write.
   */
  private recent: Array<CommitRecord | undefined> = [];
  private recentFirst = 0;
  /** Characters of documents the ring holds: bounded too, since one commit may carry megabytes. */
  private recentChars = 0;
  private readonly listeners = new Set<(seq: number) => void>();
  /** Subscribers hear once per turn: a group commit makes many commits durable in one go, and one read takes them all. */
  private readonly notify = oncePerTurn(() => {
    const newest = this.recent[this.recent.length - 1]!.seq;
    for (const listener of this.listeners) listener(newest);
  });
  /**
   * The view of a record for callers who see all of its rows, shared: every subscriber of a table then gets the same
   * object for a commit, and the HTTP side makes its JSON once (commitJson) instead of once per subscriber.
   */
  private readonly wholeViews = new WeakMap<CommitRecord, FeedCommit>();

  constructor(store: Store) {
    this.store = store;
  }

  /**
   * A commit became durable (called in seq order): keep it and tell the subscribers. With no subscriber the ring
   * keeps nothing: a page is then read from the log. Kept for the next thousand commits, every record lived long
   * enough to be promoted to the old generation and die there, which cost a write more in collections (measured in
   * instructions in-process, 21 against 7.5 thousand per write) than any page without subscribers saves.
   */
  durable(record: CommitRecord): void {
    if (this.listeners.size === 0) {
      if (this.recent.length > 0) this.forgetRecent();
      return;
    }
    const recent = this.recent;
    recent.push(rowsOnly(record));
    this.recentChars += recordChars(record);
    let first = this.recentFirst;
    while (
      first < recent.length - 1 &&
      (recent.length - first > limits.feedRecentCommitsMax || this.recentChars > limits.feedRecentCharsMax)
    ) {
      this.recentChars -= recordChars(recent[first]!);
      // Cleared now, so a dropped commit's documents are not held until the next compaction.
      recent[first++] = undefined;
    }
    if (first > 0 && first * 2 >= recent.length) {
      this.recent = recent.slice(first);
      first = 0;
    }
    this.recentFirst = first;
    if (this.listeners.size > 0) this.notify();
  }

  /** Empties the ring: what comes next starts it again, so it always holds consecutive commits. */
  private forgetRecent(): void {
    this.recent = [];
    this.recentFirst = 0;
    this.recentChars = 0;
  }

  /**
   * Calls `listener` after commits become durable, once per turn, with the newest durable seq (the commits in between
   * are read with page()); answers the unsubscribe.
   */
  subscribe(listener: (seq: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * A page of commits after `input.since`: at most `limit` commits with a change the caller may see, looking at no
   * more than limits.feedScanCommitsMax commits (a filter that matches rarely ends the page early; nextSince says
   * where to go on).
   */
  page(input: ChangesInput): ChangesPage {
    if (!Number.isSafeInteger(input.since) || input.since < 0) throw new DriftError('validation_failed', 'since must be a non-negative seq.');
    const visible = this.store.visibleSeq;
    if (input.since > visible) {
      throw new DriftError('validation_failed', `since ${input.since} is beyond the newest committed seq ${visible}.`, { newestSeq: visible });
    }
    // The feed carries commits once durable in this node's log. In cluster mode a commit is visible (and answered)
    // a moment before that, so a page after a seq just written may be empty for that moment.
    const newest = this.store.placedSeq;
    const commits: FeedCommit[] = [];
    let seq = input.since;
    const scanEnd = Math.min(newest, input.since + limits.feedScanCommitsMax);
    while (seq < scanEnd && commits.length < input.limit) {
      seq++;
      const commit = this.view(this.record(seq), input);
      if (commit !== null) commits.push(commit);
    }
    return { commits, nextSince: seq };
  }

  /** The committed record of `seq` (durable): from the ring, else from the log. */
  record(seq: number): CommitRecord {
    const oldest = this.recent[this.recentFirst]?.seq;
    const at = oldest === undefined ? -1 : this.recentFirst + seq - oldest;
    if (oldest !== undefined && seq >= oldest && at < this.recent.length) return this.recent[at]!;
    const location = this.store.timeline.locationOf(seq);
    if (location < 0) throw new DriftError('internal', `The record of seq ${seq} has no known place in the log.`);
    return this.store.documents.readRecord(location, seq);
  }

  /** The part of a commit one caller sees, or null when they see none of it. */
  view(record: CommitRecord, input: Pick<ChangesInput, 'tables' | 'policies'>): FeedCommit | null {
    const changes: FeedChange[] = [];
    let rows = 0;
    for (const change of record.changes) {
      if (change.kind !== 'row') continue;
      rows++;
      if (input.tables === null ? change.table.startsWith('_') : !input.tables.has(change.table)) continue;
      if (!this.readable(record.seq, change.table, change.key, change.doc, input.policies)) continue;
      changes.push({ table: change.table, key: change.key, op: change.op, json: change.doc });
    }
    if (changes.length === 0) return null;
    if (changes.length < rows) return { seq: record.seq, ts: record.ts, changes };
    let whole = this.wholeViews.get(record);
    if (whole === undefined) {
      whole = { seq: record.seq, ts: record.ts, changes };
      this.wholeViews.set(record, whole);
    }
    return whole;
  }

  // The policies in force now decide, as for every read; a delete is shown to whoever saw the version before it.
  private readable(seq: number, table: string, key: string, json: string | null, policies: RowPolicies | undefined): boolean {
    const policy = policies?.forTable(table) ?? null;
    if (policy === null) return true;
    let seen = json;
    if (seen === null) {
      const state = this.store.tables.get(table);
      seen = state?.versionAt(key, seq - 1)?.json ?? null;
    }
    return seen !== null && policy.read(new StoredRow(key, seen));
  }
}

// Serializable bookkeeping: the row changes of recent commits, kept exactly as long as some open serializable
// transaction may have to validate its reads against them, and the pure decision that validation makes.

import { limits } from '../../limits.js';
import type { CommitRecord, Doc } from '../types.js';

/** A row change of a committed transaction, kept while a serializable transaction may need to validate it. */
export interface CommittedRowChange {
  table: string;
  key: string;
  /** rowId(table, key), made once per commit: every serializable commit after it looks it up. */
  id: string;
  json: string | null;
}

export interface RecentCommit {
  seq: number;
  rows: CommittedRowChange[];
}

export type Predicate = (doc: Doc) => boolean;

export function rowId(table: string, key: string): string {
  return `${table}\u0000${key}`;
}

/** A commit's row changes, as serializable validation looks at them. */
export function recentCommitOf(record: CommitRecord): RecentCommit {
  const rows: CommittedRowChange[] = [];
  for (const change of record.changes) {
    if (change.kind === 'row') rows.push({ table: change.table, key: change.key, id: rowId(change.table, change.key), json: change.doc });
  }
  return { seq: record.seq, rows };
}

/** The commits after the oldest open serializable snapshot. */
export class ConflictWindow {
  private commits: RecentCommit[] = [];
  private rows = 0;
  /** Commits at or below this seq are no longer all kept: older snapshots cannot be validated. */
  private horizonSeq: number;

  constructor(startSeq: number) {
    this.horizonSeq = startSeq;
  }

  /** Keeps a new commit's row changes; `keepAfter` is the oldest snapshot an open serializable transaction holds. */
  remember(record: CommitRecord, keepAfter: number): void {
    const commit = recentCommitOf(record);
    this.commits.push(commit);
    this.rows += commit.rows.length;
    this.prune(keepAfter);
  }

  /** Drops the commits no open serializable transaction can need (and the oldest, past the bound). */
  prune(keepAfter: number): void {
    let drop = 0;
    while (drop < this.commits.length && (this.commits[drop]!.seq <= keepAfter || this.rows > limits.recentCommitRowsMax)) {
      this.rows -= this.commits[drop]!.rows.length;
      this.horizonSeq = this.commits[drop]!.seq;
      drop++;
    }
    if (drop > 0) this.commits.splice(0, drop);
  }

  /** Commits after `seq`, oldest first; null when they are no longer all kept. */
  after(seq: number): RecentCommit[] | null {
    if (seq < this.horizonSeq) return null;
    // Recent commits ascend by seq: find the first after `seq` by bisection. An old snapshot held open elsewhere
    // (an abandoned transaction, until its idle timeout) keeps thousands of commits here; a scan paid for them all.
    let lo = 0;
    let hi = this.commits.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.commits[mid]!.seq <= seq) lo = mid + 1;
      else hi = mid;
    }
    return this.commits.slice(lo);
  }
}

/** Pure: the first committed change that invalidates a read (row or predicate), described, or null. */
export function findConflict(
  commits: readonly RecentCommit[],
  reads: ReadonlyMap<string, { table: string; key: string }>,
  predicates: ReadonlyArray<{ table: string; predicate: Predicate }>,
  seenAtSnapshot: (table: string, key: string) => Doc | null,
): string | null {
  for (const commit of commits) {
    for (const change of commit.rows) {
      if (reads.has(change.id)) return `row '${change.key}' of '${change.table}' at seq ${commit.seq}`;
      for (const { table, predicate } of predicates) {
        if (table !== change.table) continue;
        const after = change.json === null ? null : (JSON.parse(change.json) as Doc);
        const before = seenAtSnapshot(change.table, change.key);
        if ((after !== null && predicate(after)) || (before !== null && predicate(before))) {
          return `a query over '${table}' at seq ${commit.seq}`;
        }
      }
    }
  }
  return null;
}

// The newest audit entries in memory (--audit-max-entries), with running counts by type, severity and outcome, for
// GET /v1/admin/audit and /stats: the routes never read the file.

import { auditTypeNames, outcomes, severities, type AuditEntry, type AuditType, type Outcome, type Severity } from './audit-chain.js';

export interface AuditFilter {
  type?: AuditType;
  user?: string;
  outcome?: Outcome;
  severity?: Severity;
  /** Entries after this id (exclusive), or at or after this instant (ms since the epoch). */
  sinceId?: number;
  sinceMs?: number;
  limit: number;
}

export interface AuditCounts {
  byType: Record<AuditType, number>;
  bySeverity: Record<Severity, number>;
  byOutcome: Record<Outcome, number>;
}

export class AuditRing {
  /** Oldest first; `start` skips dropped entries so dropping is O(1), compacted now and then. */
  private entries: AuditEntry[] = [];
  private start = 0;
  private readonly counts: AuditCounts = {
    byType: Object.fromEntries(auditTypeNames.map((type) => [type, 0])) as Record<AuditType, number>,
    bySeverity: Object.fromEntries(severities.map((severity) => [severity, 0])) as Record<Severity, number>,
    byOutcome: Object.fromEntries(outcomes.map((outcome) => [outcome, 0])) as Record<Outcome, number>,
  };

  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.entries.length - this.start;
  }

  push(entry: AuditEntry): void {
    this.entries.push(entry);
    this.count(entry, 1);
    if (this.size > this.capacity) this.count(this.entries[this.start++]!, -1);
    if (this.start > 1024 && this.start * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.start);
      this.start = 0;
    }
  }

  /** Adds entries older than every entry held (read from the files at start), as many as there is room for. */
  prependOlder(older: readonly AuditEntry[]): void {
    const room = this.capacity - this.size;
    if (room <= 0 || older.length === 0) return;
    const kept = older.slice(-room);
    for (const entry of kept) this.count(entry, 1);
    this.entries = [...kept, ...this.entries.slice(this.start)];
    this.start = 0;
  }

  /** Matching entries, newest first. */
  query(filter: AuditFilter): AuditEntry[] {
    const found: AuditEntry[] = [];
    for (let i = this.entries.length - 1; i >= this.start && found.length < filter.limit; i--) {
      const entry = this.entries[i]!;
      if (filter.sinceId !== undefined && entry.id <= filter.sinceId) break;
      if (filter.sinceMs !== undefined && Date.parse(entry.ts) < filter.sinceMs) break;
      if (matches(entry, filter)) found.push(entry);
    }
    return found;
  }

  countsCopy(): AuditCounts {
    return { byType: { ...this.counts.byType }, bySeverity: { ...this.counts.bySeverity }, byOutcome: { ...this.counts.byOutcome } };
  }

  private count(entry: AuditEntry, delta: number): void {
    this.counts.byType[entry.type] = (this.counts.byType[entry.type] ?? 0) + delta;
    this.counts.bySeverity[entry.severity] = (this.counts.bySeverity[entry.severity] ?? 0) + delta;
    this.counts.byOutcome[entry.outcome] = (this.counts.byOutcome[entry.outcome] ?? 0) + delta;
  }
}

function matches(entry: AuditEntry, filter: AuditFilter): boolean {
  return (
    (filter.type === undefined || entry.type === filter.type) &&
    (filter.user === undefined || entry.user === filter.user) &&
    (filter.outcome === undefined || entry.outcome === filter.outcome) &&
    (filter.severity === undefined || entry.severity === filter.severity)
  );
}

// What the open transactions share: who is open (the oldest serializable snapshot decides what the conflict
// window keeps), their uncommitted writes (read_uncommitted readers see them), and the conflict counters.

import type { ConflictCode, EngineObserver } from '../observer.js';
import type { Store } from '../store.js';
import type { ConflictWindow } from './conflict-window.js';
import type { TransactionImpl } from './transaction.js';

export interface ConflictCounters {
  conflicts: number;
  deadlocks: number;
}

export class TransactionRegistry {
  /** Interactive transactions begun and not ended (autocommit writes are not registered). */
  readonly open = new Set<TransactionImpl>();
  readonly counters: ConflictCounters = { conflicts: 0, deadlocks: 0 };
  private readonly dirty = new Map<string, Map<string, string | null>>();
  private readonly store: Store;
  private readonly conflicts: ConflictWindow;
  private readonly observer: EngineObserver;

  constructor(store: Store, conflicts: ConflictWindow, observer: EngineObserver = {}) {
    this.store = store;
    this.conflicts = conflicts;
    this.observer = observer;
  }

  /** The oldest snapshot an open serializable transaction may validate from (the durable seq when none is open). */
  oldestSerializableSnapshot(): number {
    let oldest = this.store.visibleSeq;
    for (const tx of this.open) {
      if (tx.isolation === 'serializable' && tx.snapshotSeq < oldest) oldest = tx.snapshotSeq;
    }
    return oldest;
  }

  ended(tx: TransactionImpl): void {
    if (!this.open.delete(tx)) return;
    // The commits kept for its validation go now, not at the next commit: after a bulk load of serializable
    // batches, the rows they wrote would otherwise stay referenced from here until some later write.
    if (tx.isolation === 'serializable') this.conflicts.prune(this.oldestSerializableSnapshot());
  }

  /** Other transactions' uncommitted writes to a table: key → document text, or null for a pending delete. */
  dirtyWrites(table: string): ReadonlyMap<string, string | null> {
    return this.dirty.get(table) ?? emptyWrites;
  }

  /** Records (json), or with undefined forgets, one uncommitted write. */
  setDirty(table: string, key: string, json: string | null | undefined): void {
    let writes = this.dirty.get(table);
    if (json === undefined) {
      writes?.delete(key);
      if (writes?.size === 0) this.dirty.delete(table);
      return;
    }
    if (writes === undefined) this.dirty.set(table, (writes = new Map()));
    writes.set(key, json);
  }

  countConflict(code: string): void {
    if (code === 'deadlock_detected') this.counters.deadlocks++;
    else if (code === 'serialization_failure' || code === 'lock_timeout') this.counters.conflicts++;
    else return;
    this.observer.conflict?.(code as ConflictCode);
  }
}

const emptyWrites: ReadonlyMap<string, string | null> = new Map();

// The engine's one port for metrics: callbacks at the few places where an event worth counting happens. The engine
// knows nothing of Prometheus; src/observability implements this port with prom-client. Figures the engine keeps
// anyway (commits, rows, log bytes, open transactions) are read from Database.stats() instead.

export type ConflictCode = 'serialization_failure' | 'deadlock_detected' | 'lock_timeout';

/**
 * Every member is optional. They run synchronously on the commit and lock paths, so an implementation must be
 * cheap (a counter increment, a histogram observation) and must not throw.
 */
export interface EngineObserver {
  /** One group of log records was written and fdatasync'ed together (group commit). */
  logGroupSynced?(group: { records: number; bytes: number; syncSeconds: number }): void;
  /** A commit became durable; `rows` counts its row events (0 for a table or index change). */
  committed?(commit: { rows: number }): void;
  /** A writer began to wait for a row lock that another transaction holds. */
  lockWaitStarted?(): void;
  /** A transaction or an autocommit write failed with a retryable conflict. */
  conflict?(code: ConflictCode): void;
  /** A checkpoint was written. */
  checkpointWritten?(checkpoint: { seq: number; bytes: number; seconds: number }): void;
}

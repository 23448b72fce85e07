// The port to a commit log shared by several nodes (cluster mode, http-api.md §10). The engine decides a commit
// against the state it has applied, proposes it to the shared log conditionally on that log's head, and applies every
// batch the log delivers, its own included, in the log's order. src/cluster implements it on etcd; the engine knows
// nothing of etcd.

/** What the engine offers the shared log: batches go in here, in order, and it says how far it got. */
export interface ReplicaSink {
  /** Highest seq applied in memory (decisions are made against this state). */
  readonly appliedSeq: number;
  /** Highest seq durable in this node's own log (and visible to its readers). */
  readonly durableSeq: number;
  /**
   * Applies one batch (an encoded value, see log/batch.ts); records at or below appliedSeq are skipped, and the batch
   * must hold appliedSeq + 1. Resolves once applied in memory; it waits when too much is not durable locally yet.
   * Rejects when the batch is damaged, leaves a gap, or the local log failed: the follower must stop then.
   */
  deliver(value: Buffer): Promise<void>;
}

export type ProposalOutcome = 'appended' | 'lost';

export interface ReplicatedLog {
  /**
   * Starts delivering, in order, every batch from the one holding `sink.appliedSeq + 1` on. Resolves once the node
   * has applied what the log held when start was called (catching up from a peer first where the shared log was
   * trimmed), so the node may say it is ready; delivery goes on until close.
   */
  start(sink: ReplicaSink): Promise<void>;
  /**
   * Appends `value`, a batch holding seqs head + 1 … lastSeq, if and only if the log's head is still `head`:
   * 'appended', or 'lost' when another batch took head + 1. Rejects when the log could not be asked or did not answer
   * in time: the outcome is then unknown until the batch holding head + 1 is delivered, and proposing the same value
   * again is safe (it can land at most once).
   */
  propose(batch: { head: number; lastSeq: number; value: Buffer }): Promise<ProposalOutcome>;
  /** Why proposals would fail now (no quorum reachable, catching up), or null. */
  refusal(): string | null;
  close(): Promise<void>;
}

// The engine's state and the one way to change it: the catalog of tables, the commit times, and the commit
// pipeline (decide the seq → apply in memory above the watermark → append to the log → place the documents →
// raise the durable watermark). Recovery fills it from a checkpoint and the log; transactions commit through it. In
// cluster mode the decision goes to the replica (replica.ts), which proposes it to the shared log and applies what
// that log delivers through the same apply → append → place → watermark tail.

import { DriftError } from '../errors.js';
import type { DocumentReader } from './log/document-reader.js';
import type { SegmentList } from './log/segment-list.js';
import type { RecordPlacement, WriteAheadLog } from './log/wal.js';
import type { MemoryGuard } from './memory-guard.js';
import { CommitTimeline } from './mvcc/commit-timeline.js';
import type { RecentCommit } from './mvcc/conflict-window.js';
import { IdempotencyStore, type CommitOutcome, type IdempotencyRequest } from './mvcc/idempotency.js';
import { TableState } from './mvcc/table-state.js';
import { compileTableSchema } from './table-schema.js';
import type { Change, CommitRecord, Doc, TableDef } from './types.js';

export interface StoreEvents {
  /** A commit was decided and applied (not durable yet): serializable bookkeeping remembers it. */
  decided(record: CommitRecord): void;
  /** A commit is durable and visible: the checkpointer counts the log grown. */
  durable(record: CommitRecord): void;
}

/** Why writes are refused now, for /readyz and the 503 answers; null while writes are accepted. */
export type WriteRefusal = { code: 'log_failed' | 'memory' | 'closed' | 'cluster'; detail: string };

/** What a commit decision is made against. */
export interface DecisionContext {
  /** The seq the commit gets if the decision stands. */
  seq: number;
  /**
   * Row changes of commits decided just before this one and not applied yet (cluster mode: earlier commits of the
   * same proposal); serializable validation must see them. Always empty on a single node, where each decision is
   * applied at once.
   */
  pending: readonly RecentCommit[];
}

/** A commit decided: its changes (and their parsed documents, which save the indexes a parse). */
export interface Decided {
  changes: Change[];
  docs?: ReadonlyArray<Doc | null>;
  /** Answers to record for Idempotency-Keys; they name the seq, so they are built with the record. */
  idempotency?: readonly IdempotencyRequest[];
  /** A catalog change: decided alone (cluster mode proposes it by itself), since later decisions depend on it. */
  catalog?: boolean;
}

/**
 * Checks a commit's conditions against the state applied now and answers its changes, or throws the typed error
 * that refuses it. It must depend only on that state and the commit's own inputs: in cluster mode a commit that lost
 * the race for its seq is decided again against the newer state.
 */
export type Decide = (context: DecisionContext) => Decided;

/** What the store hands a commit to in cluster mode (replica.ts). */
export interface CommitPort {
  commit(decide: Decide): Promise<number>;
  refusal(): string | null;
}

const nothingPending: readonly RecentCommit[] = [];

export class Store {
  readonly tables = new Map<string, TableState>();
  readonly documents: DocumentReader;
  readonly segments: SegmentList;
  /** Highest seq decided and applied in memory (durable or not). */
  lastSeq = 0;
  /** Highest seq durable in this node's log and placed: the change feed, peers' catch-up and checkpoints read up to it. */
  placedSeq = 0;
  /** Commits made durable since start. */
  commits = 0;
  private lastTs = 0;
  /** Each commit's time and record location. */
  timeline = new CommitTimeline();
  /** The answers to writes sent with an Idempotency-Key, recorded with their commits. */
  readonly idempotency = new IdempotencyStore((seq) => this.documents.readRecord(this.timeline.locationOf(seq), seq));
  private log: WriteAheadLog | null = null;
  /** Cluster mode: commits are proposed to the shared log through this; null on a single node. */
  private replica: CommitPort | null = null;
  /** Readers waiting for a seq to become visible (minSeq), resolved as the watermark passes it. */
  private readonly visibleWaiters = new Set<{ seq: number; resolve(): void }>();
  /** Settles once the newest commit so far is durable and placed (or failed): a checkpoint waits for it. */
  private lastPlaced: Promise<void> = Promise.resolve();
  /** True while recovery fills the tables: they are made staged (hash maps, ordered once at the end). */
  recovering = false;
  private logFailure: string | null = null;
  private closed = false;
  private readonly memory: MemoryGuard | null;
  private readonly events: StoreEvents;

  constructor(options: { documents: DocumentReader; segments: SegmentList; memory: MemoryGuard | null; events: StoreEvents }) {
    this.documents = options.documents;
    this.segments = options.segments;
    this.memory = options.memory;
    this.events = options.events;
  }

  /** Hands the store its log once recovery has replayed it: commits go there from now on. */
  attachLog(log: WriteAheadLog): void {
    this.log = log;
    this.placedSeq = this.lastSeq;
  }

  /** Cluster mode: commits go through the replica from now on. */
  attachReplica(replica: CommitPort): void {
    this.replica = replica;
  }

  /**
   * Highest seq visible to readers: every snapshot is at or below it. On a single node a commit is visible once
   * durable in this node's log (placedSeq); in cluster mode once applied here (lastSeq), for it is durable in the
   * shared log already (http-api.md §10), and this node's own log follows behind.
   */
  get visibleSeq(): number {
    return this.replica === null ? this.placedSeq : this.lastSeq;
  }

  get replicated(): boolean {
    return this.replica !== null;
  }

  /** Commit time of the newest applied record: the next commit's time is never earlier. */
  get lastCommitTs(): number {
    return this.lastTs;
  }

  get logBytes(): number {
    return this.log?.bytes ?? 0;
  }

  /** Commit times and locations loaded from a checkpoint; `seq` is the checkpoint's. */
  loadTimeline(timeline: CommitTimeline, seq: number): void {
    this.timeline = timeline;
    this.lastSeq = seq;
    this.lastTs = timeline.tsOf(seq);
  }

  tsOf(seq: number): number {
    return this.timeline.tsOf(seq);
  }

  makeTable(def: TableDef): TableState {
    const table = new TableState(def, def.schema === undefined ? null : compileTableSchema(def.schema), this.documents);
    if (this.recovering) table.beginStaging();
    return table;
  }

  /** A table visible to readers: created at or below the durable watermark. */
  readableTable(name: string): TableState {
    const table = this.tables.get(name);
    if (table === undefined || table.def.createdSeq > this.visibleSeq) {
      throw new DriftError('table_not_found', `Table '${name}' does not exist.`);
    }
    return table;
  }

  private requireTable(name: string): TableState {
    const table = this.tables.get(name);
    if (table === undefined) throw new DriftError('table_not_found', `Table '${name}' does not exist.`);
    return table;
  }

  // ---- applying records ---------------------------------------------------------------------------------

  /**
   * Applies one commit to memory: at recovery (with where its documents lie in the log), and for a new commit before
   * its record is durable (with the parsed documents, which save a parse for the indexes).
   */
  apply(record: CommitRecord, options: { docs?: ReadonlyArray<Doc | null>; placement?: RecordPlacement } = {}): void {
    if (record.seq !== this.lastSeq + 1) throw new Error(`Log record seq ${record.seq} does not follow seq ${this.lastSeq}.`);
    this.lastSeq = record.seq;
    this.timeline.record(record.seq, record.ts, options.placement?.frameLocation ?? -1);
    this.lastTs = record.ts;
    record.changes.forEach((change, i) => this.applyChange(record.seq, change, i, options));
  }

  private applyChange(seq: number, change: Change, i: number, options: { docs?: ReadonlyArray<Doc | null>; placement?: RecordPlacement }): void {
    switch (change.kind) {
      case 'row': {
        const placement = options.placement;
        const doc = options.docs?.[i] ?? undefined;
        // A record of an older format has no per-document locations: its documents are read by whole frame.
        const framed = placement !== undefined && placement.documentLocations === null;
        const location = placement === undefined ? undefined : framed ? placement.frameLocation : placement.documentLocations![i]!;
        this.requireTable(change.table).applyRow(seq, change.key, change.op, change.doc, {
          ...(doc !== undefined ? { doc } : {}),
          ...(location !== undefined ? { location } : {}),
          framed,
        });
        return;
      }
      case 'createTable': {
        const { kind: _kind, ...def } = change;
        this.tables.set(change.name, this.makeTable({ ...def, indexes: [...def.indexes], createdSeq: seq }));
        return;
      }
      case 'dropTable':
        this.tables.delete(change.name);
        return;
      case 'createIndex':
        this.requireTable(change.table).addIndex(change.field);
        return;
      case 'dropIndex':
        this.requireTable(change.table).dropIndex(change.field);
        return;
      case 'idempotency': {
        this.idempotency.record({ user: change.user, key: change.key, seq, expiresAt: change.expiresAt, answerChars: change.answer.length }, Date.now());
        return;
      }
    }
  }

  // ---- the commit pipeline ------------------------------------------------------------------------------

  /** Why a write would be refused now, or null. */
  writeRefusal(): WriteRefusal | null {
    if (this.closed) return { code: 'closed', detail: 'The database is shutting down.' };
    if (this.logFailure !== null || this.log === null || this.log.failed) {
      return { code: 'log_failed', detail: `The log cannot be written (${this.logFailure ?? 'not open'}); the server stopped accepting writes.` };
    }
    const memory = this.memory?.refusal() ?? null;
    if (memory !== null) return { code: 'memory', detail: memory };
    const cluster = this.replica?.refusal() ?? null;
    return cluster === null ? null : { code: 'cluster', detail: cluster };
  }

  /** Throws 503 unavailable when writes are refused (log failed, memory limit, shutting down). */
  checkWritable(): void {
    const refusal = this.writeRefusal();
    if (refusal === null) return;
    throw new DriftError('unavailable', refusal.detail, { retryAfterSeconds: refusalRetryAfterSeconds[refusal.code] });
  }

  /**
   * Decides the commit against the state applied now, gives it the next seq, applies the changes in memory
   * (invisible above the watermark), appends the record, places its documents once durable, and raises the watermark
   * so readers see it. Resolves with the seq. In cluster mode the replica proposes it to the shared log instead.
   */
  commit(decide: Decide): Promise<number> {
    this.checkWritable();
    if (this.replica !== null) return this.replica.commit(decide);
    const seq = this.lastSeq + 1;
    const decided = decide({ seq, pending: nothingPending });
    return this.applyAndAppend(this.recordOf(seq, decided), decided.docs);
  }

  /** The record of a decided commit at `seq`: its changes, the answers stored for its Idempotency-Keys, its time. */
  recordOf(seq: number, decided: Decided): CommitRecord {
    const { idempotency = [] } = decided;
    let { changes } = decided;
    // An answer stored for an Idempotency-Key names the commit's seq, known only now; it goes into the same record.
    if (idempotency.length > 0) {
      let rows = 0;
      for (const change of changes) if (change.kind === 'row') rows++;
      const outcome: CommitOutcome = { seq, rowsWritten: rows };
      // A new array of the exact size: pushing onto the decided one grew its store to 17 slots on every keyed write.
      changes = changes.concat(
        idempotency.map((request): Change => {
          const { user, key, fingerprint, expiresAt } = request;
          return { kind: 'idempotency', user, key, fingerprint, expiresAt, answer: request.answer(outcome) };
        }),
      );
    }
    return { seq, ts: Math.max(Date.now(), this.lastTs), changes };
  }

  /**
   * Cluster mode: applies a record the shared log delivered and makes it visible at once (the shared log holds it
   * durably; records arrive in seq order); settles once it is durable in this node's log too.
   */
  applyReplicated(record: CommitRecord): Promise<number> {
    if (this.logFailure !== null || this.log === null || this.log.failed) {
      return Promise.reject(new DriftError('unavailable', 'The log cannot be written; the server stopped accepting writes.', { retryAfterSeconds: 60 }));
    }
    const durable = this.applyAndAppend(record, undefined);
    if (this.visibleWaiters.size > 0) this.wakeVisibleWaiters();
    return durable;
  }

  private async applyAndAppend(record: CommitRecord, docs: ReadonlyArray<Doc | null> | undefined): Promise<number> {
    const log = this.log!;
    const { changes } = record;
    this.apply(record, docs === undefined ? {} : { docs });
    // The tables the record's rows went to, resolved as they were applied: a later drop and re-create of a name
    // must not receive their placement.
    const targets = changes.map((change) => (change.kind === 'row' ? this.requireTable(change.table) : null));
    this.events.decided(record);
    const placed = log.append(record).then((placement) => this.place(record, targets, placement));
    this.lastPlaced = placed.catch(() => {});
    try {
      await placed;
    } catch (error) {
      this.logFailure ??= describeFailure(error);
      throw new DriftError('unavailable', 'The log cannot be written; the server stopped accepting writes.', { retryAfterSeconds: 60 });
    }
    this.placedSeq = record.seq;
    this.commits++;
    this.events.durable(record);
    if (this.visibleWaiters.size > 0) this.wakeVisibleWaiters();
    return record.seq;
  }

  /**
   * Resolves once `seq` is visible here, or rejects with 503 unavailable after `timeoutMs` (http-api.md §10, minSeq:
   * a client reads its own writes on any node). A seq already visible resolves at once.
   */
  waitVisible(seq: number, timeoutMs: number): Promise<void> {
    if (seq <= this.visibleSeq) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = {
        seq,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.visibleWaiters.delete(waiter);
        reject(
          new DriftError('unavailable', `This node has not applied seq ${seq} within ${timeoutMs} ms (it has applied up to seq ${this.visibleSeq}).`, {
            retryAfterSeconds: 1,
          }),
        );
      }, timeoutMs);
      this.visibleWaiters.add(waiter);
    });
  }

  private wakeVisibleWaiters(): void {
    for (const waiter of this.visibleWaiters) {
      if (waiter.seq > this.visibleSeq) continue;
      this.visibleWaiters.delete(waiter);
      waiter.resolve();
    }
  }

  private place(record: CommitRecord, targets: ReadonlyArray<TableState | null>, placement: RecordPlacement): void {
    this.timeline.place(record.seq, placement.frameLocation);
    record.changes.forEach((change, i) => {
      if (change.kind === 'row' && change.doc !== null) targets[i]!.placeVersion(change.key, record.seq, placement.documentLocations![i]!);
    });
  }

  /** Settles once every commit decided so far is durable and placed (or failed). */
  placedUpToNow(): Promise<void> {
    return this.lastPlaced;
  }

  /** Refuses writes from now on and waits for the log's last flush. */
  async close(): Promise<void> {
    this.closed = true;
    await this.log?.close();
    this.documents.close();
  }
}

const refusalRetryAfterSeconds: Record<WriteRefusal['code'], number> = { closed: 1, log_failed: 60, memory: 60, cluster: 2 };

function describeFailure(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'cause' in error && error.cause instanceof Error) return error.cause.message;
  return error instanceof Error ? error.message : String(error);
}

// Open transactions by id for the HTTP layer: ownership, idle expiry, a maximum lifetime, and caps on how many
// are open per user and in total. The engine decides isolation; this layer decides who may use which id, when.

import { DriftError } from '../errors.js';
import type { BeginInput, Database, IdempotencyRequest, Transaction } from '../engine/index.js';

export interface TransactionServiceOptions {
  idleTimeoutMs: number;
  /** Longest a transaction may live, whatever its activity; `timeoutMs` at begin may only shorten it. */
  lifetimeMsMax: number;
  openPerUserMax: number;
  openTotalMax: number;
  /** Ids of expired (410) and aborted (409) transactions remembered, instead of answering 404. */
  expiredRememberedMax: number;
}

export const defaultTransactionServiceOptions: TransactionServiceOptions = {
  idleTimeoutMs: 30_000,
  lifetimeMsMax: 10 * 60_000,
  openPerUserMax: 64,
  openTotalMax: 1024,
  expiredRememberedMax: 10_000,
};

export interface TransactionInfo {
  id: string;
  isolation: Transaction['isolation'];
  readOnly: boolean;
  snapshotSeq: number;
  state: Transaction['state'];
  writes: number;
  expiresAt: string;
}

interface Entry {
  tx: Transaction;
  user: string;
  deadline: number;
  idleTimer: NodeJS.Timeout;
  lifetimeTimer: NodeJS.Timeout;
  lastUsed: number;
  /** Requests in flight or queued; an entry is not idle while one runs. */
  busy: number;
  /** Settles when the request before this one is done: requests of one transaction run one at a time. */
  turn: Promise<void>;
}

export class TransactionService {
  private readonly db: () => Database;
  private readonly options: TransactionServiceOptions;
  private readonly entries = new Map<string, Entry>();
  private readonly openByUser = new Map<string, number>();
  /** Ended transactions whose id still answers something other than 404: id → owner and how it ended. */
  private readonly ended = new Map<string, { user: string; how: 'expired' | 'aborted' }>();

  constructor(db: () => Database, options: Partial<TransactionServiceOptions> = {}) {
    this.db = db;
    this.options = { ...defaultTransactionServiceOptions, ...options };
  }

  get openCount(): number {
    return this.entries.size;
  }

  begin(user: string, input: BeginInput & { timeoutMs?: number }): TransactionInfo {
    const perUser = this.openByUser.get(user) ?? 0;
    if (perUser >= this.options.openPerUserMax || this.entries.size >= this.options.openTotalMax) {
      throw new DriftError('unavailable', 'Too many open transactions; commit or roll back some first.', {
        retryAfterSeconds: 1,
      });
    }
    const beginInput: BeginInput = {};
    if (input.isolation !== undefined) beginInput.isolation = input.isolation;
    if (input.readOnly !== undefined) beginInput.readOnly = input.readOnly;
    if (input.policies !== undefined) beginInput.policies = input.policies;
    const tx = this.db().begin(beginInput);
    const lifetime = Math.min(input.timeoutMs ?? this.options.lifetimeMsMax, this.options.lifetimeMsMax);
    const now = Date.now();
    const entry: Entry = {
      tx,
      user,
      deadline: now + lifetime,
      lastUsed: now,
      busy: 0,
      turn: Promise.resolve(),
      idleTimer: setTimeout(() => this.expireIfIdle(tx.id), this.options.idleTimeoutMs).unref(),
      lifetimeTimer: setTimeout(() => this.expire(tx.id, 'lifetime'), lifetime).unref(),
    };
    this.entries.set(tx.id, entry);
    this.openByUser.set(user, perUser + 1);
    return this.describe(entry);
  }

  info(user: string, id: string): TransactionInfo {
    return this.describe(this.entry(user, id));
  }

  /**
   * Runs `work` inside transaction `id` of `user`: checks ownership and state, keeps the transaction from
   * expiring while the work runs, and refreshes its idle timer afterwards.
   */
  async run<T>(user: string, id: string, work: (tx: Transaction) => Promise<T> | T): Promise<T> {
    const entry = this.entry(user, id);
    const previous = entry.turn;
    let done!: () => void;
    entry.turn = new Promise((resolve) => (done = resolve));
    entry.busy++;
    try {
      await previous;
      this.entry(user, id);
      return await work(entry.tx);
    } finally {
      entry.busy--;
      entry.lastUsed = Date.now();
      entry.idleTimer.refresh();
      done();
      // An aborted transaction holds nothing any more: free its slot, and keep its id only to answer 409.
      if (entry.tx.state === 'aborted' && this.entries.get(id) === entry) this.end(id, 'aborted');
    }
  }

  /** Commits; `rows` is how many rows the transaction wrote (the slow-query log reports it). */
  async commit(user: string, id: string, options: { idempotency?: IdempotencyRequest } = {}): Promise<{ seq: number | null; rows: number }> {
    const result = await this.run(user, id, async (tx) => ({ ...(await tx.commit(options)), rows: tx.writeCount }));
    this.forget(id);
    return result;
  }

  /**
   * Rolls back at once, cancelling a lock wait of the transaction's request in flight; but a commit in flight
   * decides the outcome, so the rollback waits for it and then answers as the transaction ended.
   */
  async rollback(user: string, id: string): Promise<void> {
    if (this.ended.get(id)?.user === user && this.ended.get(id)?.how === 'aborted') {
      this.ended.delete(id);
      return;
    }
    const open = this.entries.get(id);
    if (open?.user === user && open.tx.state === 'aborted') {
      // Aborted outside a request (its table was dropped): rolling back just forgets it.
      open.tx.rollback();
      this.forget(id);
      return;
    }
    const entry = this.entry(user, id);
    if (entry.tx.committing) {
      await entry.turn;
      return this.rollback(user, id);
    }
    entry.tx.rollback();
    this.forget(id);
  }

  /** Rolls back every open transaction (shutdown). */
  closeAll(): void {
    for (const id of [...this.entries.keys()]) this.expire(id, 'shutdown');
  }

  private entry(user: string, id: string): Entry {
    const entry = this.entries.get(id);
    if (entry === undefined || entry.user !== user) {
      const ended = this.ended.get(id);
      if (ended?.user === user && ended.how === 'expired') {
        throw new DriftError('transaction_expired', 'The transaction expired and was rolled back.');
      }
      if (ended?.user === user && ended.how === 'aborted') {
        throw new DriftError('transaction_aborted', 'The transaction was aborted; roll it back and retry.');
      }
      throw new DriftError('transaction_not_found', `Transaction '${id}' does not exist.`);
    }
    if (entry.tx.state === 'aborted') {
      throw new DriftError('transaction_aborted', 'The transaction was aborted; roll it back and retry.');
    }
    if (entry.tx.state === 'committed' || entry.tx.state === 'rolled_back') {
      this.forget(id);
      throw new DriftError('transaction_not_found', `Transaction '${id}' has ended.`);
    }
    return entry;
  }

  private expireIfIdle(id: string): void {
    const entry = this.entries.get(id);
    if (entry === undefined) return;
    if (entry.busy > 0) {
      entry.idleTimer.refresh();
      return;
    }
    this.expire(id, 'idle');
  }

  private expire(id: string, why: 'idle' | 'lifetime' | 'shutdown'): void {
    const entry = this.entries.get(id);
    if (entry === undefined) return;
    if (entry.tx.committing) {
      // The commit in flight decides; if it leaves the transaction open (a failed commit), expire it then.
      void entry.turn.then(() => this.expire(id, why));
      return;
    }
    // One aborted already (its table was dropped) stays aborted: its id keeps answering 409, not 410.
    const how = entry.tx.state === 'aborted' ? 'aborted' : 'expired';
    entry.tx.expire(new DriftError('transaction_expired', `The transaction expired (${why}) and was rolled back.`));
    this.end(id, how);
  }

  /** Forgets an open transaction but remembers, bounded, that its id ended this way. */
  private end(id: string, how: 'expired' | 'aborted'): void {
    const entry = this.entries.get(id);
    if (entry === undefined) return;
    this.forget(id);
    this.ended.set(id, { user: entry.user, how });
    if (this.ended.size > this.options.expiredRememberedMax) this.ended.delete(this.ended.keys().next().value!);
  }

  private forget(id: string): void {
    const entry = this.entries.get(id);
    if (entry === undefined) return;
    clearTimeout(entry.idleTimer);
    clearTimeout(entry.lifetimeTimer);
    this.entries.delete(id);
    const left = (this.openByUser.get(entry.user) ?? 1) - 1;
    if (left === 0) this.openByUser.delete(entry.user);
    else this.openByUser.set(entry.user, left);
  }

  private describe(entry: Entry): TransactionInfo {
    const idleDeadline = entry.lastUsed + this.options.idleTimeoutMs;
    return {
      id: entry.tx.id,
      isolation: entry.tx.isolation,
      readOnly: entry.tx.readOnly,
      snapshotSeq: entry.tx.snapshotSeq,
      state: entry.tx.state,
      writes: entry.tx.writeCount,
      expiresAt: new Date(Math.min(idleDeadline, entry.deadline)).toISOString(),
    };
  }
}

// The row lock manager of interactive transactions: exclusive re-entrant locks, FIFO waits bounded by the lock
// timeout, and deadlock detection on the wait-for graph at the moment a wait would close a cycle.
//
// The wait-for graph needs no storage of its own. Every owner waits for at most one resource and every resource
// has one holder, so each owner has at most one outgoing edge: owner → holder of the resource it waits for.
// A new wait closes a cycle exactly when walking that chain from the resource's holder comes back to the
// requester. (Waiters queued ahead on the same resource add no cycles: they wait on that resource only, so any
// path through them leads back to its holder.) Because every cycle-closing wait is refused, the graph is always
// acyclic, and a grant cannot create a cycle either: the new holder was waiting on nothing else.

import { assert } from '../../assert.js';
import { DriftError } from '../../errors.js';

/** Timer port (a fake clock in tests). Timers it creates must not keep the process alive. */
export interface LockTimers {
  set(callback: () => void, delayMs: number): unknown;
  clear(handle: unknown): void;
}

export interface DeadlockInfo {
  /** The owners in the cycle, starting with the requester (the victim), each waiting for the next one's lock. */
  cycle: string[];
  /** `now()` when the cycle was found. */
  detectedMs: number;
}

export interface LockManagerOptions {
  lockTimeoutMs: number;
  /** Waiters queued across all resources; past it a new wait is refused with `unavailable`. */
  waitersMax: number;
  now?: () => number;
  timers?: LockTimers;
  /** Called synchronously before the victim is rejected; it must not call back into the manager. */
  onDeadlock?(info: DeadlockInfo): void;
  /** Called synchronously when a request is queued to wait (metrics); it must not call back into the manager. */
  onWait?(): void;
}

interface Waiter {
  readonly owner: string;
  readonly resource: string;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  timer: unknown;
}

interface Lock {
  holder: string;
  /** FIFO: the next holder is queue[0]. */
  readonly queue: Waiter[];
}

interface OwnerState {
  /** Resources held, in the order they were granted. */
  readonly held: Set<string>;
  waiting: Waiter | undefined;
}

const nodeTimers: LockTimers = {
  set(callback, delayMs) {
    // Unref: a transaction waiting on a lock must not keep a shutting-down process alive.
    return setTimeout(callback, delayMs).unref();
  },
  clear(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

export class LockManager {
  private readonly lockTimeoutMs: number;
  private readonly waitersMax: number;
  private readonly now: () => number;
  private readonly timers: LockTimers;
  private readonly onDeadlock: ((info: DeadlockInfo) => void) | undefined;
  private readonly onWait: (() => void) | undefined;
  private readonly locks = new Map<string, Lock>();
  private readonly owners = new Map<string, OwnerState>();
  private waiters = 0;

  constructor(options: LockManagerOptions) {
    assert(Number.isFinite(options.lockTimeoutMs) && options.lockTimeoutMs > 0, 'lockTimeoutMs must be positive');
    assert(Number.isInteger(options.waitersMax) && options.waitersMax >= 0, 'waitersMax must be a count');
    this.lockTimeoutMs = options.lockTimeoutMs;
    this.waitersMax = options.waitersMax;
    this.now = options.now ?? Date.now;
    this.timers = options.timers ?? nodeTimers;
    this.onDeadlock = options.onDeadlock;
    this.onWait = options.onWait;
  }

  /**
   * Exclusive, re-entrant lock on `resource` for `owner` (a transaction id).
   *
   *   resource is…                        | answer
   *   ------------------------------------|----------------------------------------------------------------
   *   free                                | `true`: granted now (no Promise allocated)
   *   held by `owner`                     | `true` (re-entrant; still one lock, released once)
   *   held by another; the wait would     | rejected Promise `deadlock_detected`, never enqueued: the
   *     close a cycle                     |   requester is the victim, so the owners it waits on proceed
   *   held by another; waitersMax queued  | rejected Promise `unavailable` with `retryAfterSeconds`
   *   held by another                     | Promise, queued FIFO: resolves when granted, rejects with
   *                                       |   `lock_timeout` after lockTimeoutMs, or with releaseAll's reason
   *   (owner is already waiting)          | AssertionError: callers serialise a transaction's requests
   *
   * A rejected Promise must be awaited or caught like any other.
   */
  acquire(owner: string, resource: string): true | Promise<void> {
    const state = this.owners.get(owner);
    assert(state?.waiting === undefined, `owner ${owner} is already waiting for a lock`);
    const lock = this.locks.get(resource);
    if (lock === undefined) {
      this.locks.set(resource, { holder: owner, queue: [] });
      this.ownerState(owner).held.add(resource);
      return true;
    }
    if (lock.holder === owner) return true;
    const cycle = this.cycleThrough(owner, lock.holder);
    if (cycle !== undefined) return this.refuseDeadlock(cycle);
    if (this.waiters >= this.waitersMax) {
      const retryAfterSeconds = Math.max(1, Math.ceil(this.lockTimeoutMs / 1000));
      return Promise.reject(new DriftError('unavailable', 'too many transactions are waiting for locks', { retryAfterSeconds }));
    }
    return this.enqueue(owner, lock, resource);
  }

  /**
   * Release every lock of `owner` and cancel its pending wait, rejecting it with `reason` (by default
   * `transaction_aborted`); each freed resource goes to its first waiter. Unknown owners are ignored.
   */
  releaseAll(owner: string, reason?: Error): void {
    const state = this.owners.get(owner);
    if (state === undefined) return;
    const waiter = state.waiting;
    if (waiter !== undefined) {
      this.dequeue(waiter);
      waiter.reject(reason ?? new DriftError('transaction_aborted', 'the transaction ended while it waited for a lock'));
    }
    for (const resource of state.held) this.handOver(resource);
    this.owners.delete(owner);
  }

  holder(resource: string): string | undefined {
    return this.locks.get(resource)?.holder;
  }

  locksHeld(owner: string): number {
    return this.owners.get(owner)?.held.size ?? 0;
  }

  /** The resource `owner` waits for, if any. */
  waitingFor(owner: string): string | undefined {
    return this.owners.get(owner)?.waiting?.resource;
  }

  /** Waiters queued across all resources. */
  get waiterCount(): number {
    return this.waiters;
  }

  // ---- private ----

  private ownerState(owner: string): OwnerState {
    let state = this.owners.get(owner);
    if (state === undefined) {
      state = { held: new Set(), waiting: undefined };
      this.owners.set(owner, state);
    }
    return state;
  }

  /** The cycle `requester` → `holder` → … → `requester` a new wait would close, or undefined. */
  private cycleThrough(requester: string, holder: string): string[] | undefined {
    const cycle = [requester];
    let owner: string | undefined = holder;
    while (owner !== undefined) {
      if (owner === requester) return cycle;
      cycle.push(owner);
      // The graph is acyclic (see the file comment), so a walk longer than the owner count is a bug.
      assert(cycle.length <= this.owners.size + 1, 'the wait-for graph has a cycle');
      const waiting: Waiter | undefined = this.owners.get(owner)?.waiting;
      owner = waiting === undefined ? undefined : this.locks.get(waiting.resource)?.holder;
    }
    return undefined;
  }

  private refuseDeadlock(cycle: string[]): Promise<never> {
    this.onDeadlock?.({ cycle, detectedMs: this.now() });
    const error = new DriftError('deadlock_detected', 'this lock wait would close a cycle of waiting transactions', {
      retryable: true,
    });
    return Promise.reject(error);
  }

  private enqueue(owner: string, lock: Lock, resource: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { owner, resource, resolve, reject, timer: undefined };
      waiter.timer = this.timers.set(() => this.expire(waiter), this.lockTimeoutMs);
      lock.queue.push(waiter);
      this.ownerState(owner).waiting = waiter;
      this.waiters++;
      this.onWait?.();
    });
  }

  private expire(waiter: Waiter): void {
    this.dequeue(waiter);
    const error = new DriftError('lock_timeout', `waited ${this.lockTimeoutMs} ms for a row lock`, { retryable: true });
    waiter.reject(error);
  }

  /** Take a waiter off its queue and clear its timer; the owner keeps the locks it holds. */
  private dequeue(waiter: Waiter): void {
    this.timers.clear(waiter.timer);
    const lock = this.locks.get(waiter.resource);
    assert(lock !== undefined, 'a waiter waits on a held resource');
    const index = lock.queue.indexOf(waiter);
    assert(index >= 0, 'a waiter is in its resource queue');
    lock.queue.splice(index, 1);
    this.waiters--;
    const state = this.owners.get(waiter.owner);
    assert(state?.waiting === waiter, 'an owner waits for one resource');
    state.waiting = undefined;
    if (state.held.size === 0) this.owners.delete(waiter.owner);
  }

  /** Give a released resource to its first waiter, or free it. */
  private handOver(resource: string): void {
    const lock = this.locks.get(resource);
    assert(lock !== undefined, 'a held resource has a lock');
    const next = lock.queue.shift();
    if (next === undefined) {
      this.locks.delete(resource);
      return;
    }
    this.timers.clear(next.timer);
    this.waiters--;
    lock.holder = next.owner;
    const state = this.owners.get(next.owner);
    assert(state?.waiting === next, 'the first waiter is waiting');
    state.waiting = undefined;
    state.held.add(resource);
    next.resolve();
  }
}

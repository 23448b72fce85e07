// LockManager: grants, FIFO waits, timeouts, cancellation, deadlock detection, and a model-based random schedule.

import t from 'tap';
import fc from 'fast-check';
import { LockManager, type DeadlockInfo, type LockManagerOptions, type LockTimers } from '../../src/engine/locks/lock-manager.js';
import { DriftError } from '../../src/errors.js';

/** A manual clock whose timers fire, in due order, only when the test advances it. */
class FakeClock implements LockTimers {
  nowMs = 0;
  private seq = 0;
  private readonly pending = new Map<number, { dueMs: number; callback: () => void }>();

  now = (): number => this.nowMs;

  set(callback: () => void, delayMs: number): unknown {
    const id = ++this.seq;
    this.pending.set(id, { dueMs: this.nowMs + delayMs, callback });
    return id;
  }

  clear(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  get timerCount(): number {
    return this.pending.size;
  }

  advance(ms: number): void {
    const target = this.nowMs + ms;
    for (;;) {
      const due = [...this.pending].filter(([, timer]) => timer.dueMs <= target);
      if (due.length === 0) break;
      due.sort(([a, x], [b, y]) => x.dueMs - y.dueMs || a - b);
      const [id, timer] = due[0];
      this.pending.delete(id);
      this.nowMs = timer.dueMs;
      timer.callback();
    }
    this.nowMs = target;
  }
}

function setup(options: Partial<LockManagerOptions> = {}) {
  const clock = new FakeClock();
  const deadlocks: DeadlockInfo[] = [];
  const locks = new LockManager({
    lockTimeoutMs: 1000,
    waitersMax: 100,
    now: clock.now,
    timers: clock,
    onDeadlock: (info) => deadlocks.push(info),
    ...options,
  });
  return { clock, locks, deadlocks };
}

/** Observe a pending acquire without awaiting it: its settlement shows up in `state` after a tick. */
function watch(result: true | Promise<void>): { state: string } {
  const seen = { state: 'pending' };
  if (result === true) seen.state = 'granted';
  else result.then(() => (seen.state = 'granted'), (error: unknown) => (seen.state = codeOf(error)));
  return seen;
}

function codeOf(error: unknown): string {
  return error instanceof DriftError ? error.code : `other:${String(error)}`;
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

t.test('a free resource is granted at once with true, not a Promise', async (t) => {
  const { locks } = setup();
  t.equal(locks.acquire('A', 'r1'), true);
  t.equal(locks.holder('r1'), 'A');
  t.equal(locks.locksHeld('A'), 1);
  t.equal(locks.waitingFor('A'), undefined);
  t.equal(locks.waiterCount, 0);
});

t.test('the holder re-acquires its own lock at once, and it is still one lock', async (t) => {
  const { locks } = setup();
  locks.acquire('A', 'r1');
  t.equal(locks.acquire('A', 'r1'), true);
  t.equal(locks.locksHeld('A'), 1);
  locks.releaseAll('A');
  t.equal(locks.holder('r1'), undefined, 'one release frees it');
  t.equal(locks.locksHeld('A'), 0);
});

t.test('waiters on a held resource are granted in FIFO order as holders release', async (t) => {
  const { locks, clock } = setup();
  locks.acquire('A', 'r1');
  const b = watch(locks.acquire('B', 'r1'));
  const c = watch(locks.acquire('C', 'r1'));
  t.equal(locks.waiterCount, 2);
  t.equal(locks.waitingFor('B'), 'r1');
  await tick();
  t.same([b.state, c.state], ['pending', 'pending']);

  locks.releaseAll('A');
  await tick();
  t.same([b.state, c.state], ['granted', 'pending']);
  t.equal(locks.holder('r1'), 'B');
  t.equal(locks.waitingFor('B'), undefined);
  t.equal(locks.waiterCount, 1);

  locks.releaseAll('B');
  await tick();
  t.equal(c.state, 'granted');
  t.equal(locks.holder('r1'), 'C');
  t.equal(locks.waiterCount, 0);
  t.equal(clock.timerCount, 0, 'grants cleared the wait timers');
});

t.test('a wait longer than lockTimeoutMs fails with retryable lock_timeout and leaves the queue', async (t) => {
  const { locks, clock } = setup({ lockTimeoutMs: 500 });
  locks.acquire('A', 'r1');
  locks.acquire('B', 'r2');
  const wait = locks.acquire('B', 'r1');
  t.not(wait, true);
  clock.advance(499);
  t.equal(locks.waitingFor('B'), 'r1', 'still waiting just before the timeout');
  clock.advance(1);
  const error = await (wait as Promise<void>).then(() => undefined, (e: unknown) => e);
  t.ok(error instanceof DriftError);
  t.equal((error as DriftError).code, 'lock_timeout');
  t.same((error as DriftError).fields, { retryable: true });
  t.equal(locks.waitingFor('B'), undefined);
  t.equal(locks.waiterCount, 0);
  t.equal(locks.holder('r1'), 'A', 'the holder is untouched');
  t.equal(locks.locksHeld('B'), 1, 'the timed-out owner keeps its other locks until it releases');
  locks.releaseAll('A');
  t.equal(locks.holder('r1'), undefined, 'a timed-out waiter is not granted later');
});

t.test('releaseAll of a waiting owner cancels its wait with the given reason (or transaction_aborted)', async (t) => {
  const { locks, clock } = setup();
  locks.acquire('A', 'r1');
  const b = locks.acquire('B', 'r1') as Promise<void>;
  const reason = new DriftError('transaction_expired', 'idle too long');
  locks.releaseAll('B', reason);
  await t.rejects(b, reason);
  t.equal(locks.waiterCount, 0);
  t.equal(clock.timerCount, 0, 'the cancelled wait cleared its timer');

  const c = locks.acquire('C', 'r1') as Promise<void>;
  locks.releaseAll('C');
  await t.rejects(c, { code: 'transaction_aborted' });
  locks.releaseAll('A');
  t.equal(locks.holder('r1'), undefined, 'cancelled waiters are never granted');
});

t.test('two owners: the wait that closes the cycle gets deadlock_detected; the other proceeds after it releases', async (t) => {
  const { locks, deadlocks, clock } = setup();
  locks.acquire('A', 'r1');
  locks.acquire('B', 'r2');
  const b = watch(locks.acquire('B', 'r1'));
  const a = locks.acquire('A', 'r2');
  await t.rejects(a as Promise<void>, { code: 'deadlock_detected', fields: { retryable: true } });
  t.same(deadlocks, [{ cycle: ['A', 'B'], detectedMs: clock.nowMs }]);
  t.equal(locks.waitingFor('A'), undefined, 'the victim was never enqueued');
  t.equal(locks.waiterCount, 1);
  t.equal(b.state, 'pending');

  locks.releaseAll('A');
  await tick();
  t.equal(b.state, 'granted');
  t.equal(locks.holder('r1'), 'B');
  t.equal(locks.holder('r2'), 'B');
});

t.test('three owners: the third wait closes the cycle and is the victim; the others finish in turn', async (t) => {
  const { locks, deadlocks } = setup();
  locks.acquire('A', 'r1');
  locks.acquire('B', 'r2');
  locks.acquire('C', 'r3');
  const a = watch(locks.acquire('A', 'r2'));
  const b = watch(locks.acquire('B', 'r3'));
  await t.rejects(locks.acquire('C', 'r1') as Promise<void>, { code: 'deadlock_detected' });
  t.same(deadlocks.map((d) => d.cycle), [['C', 'A', 'B']]);

  locks.releaseAll('C');
  await tick();
  t.same([a.state, b.state], ['pending', 'granted']);
  locks.releaseAll('B');
  await tick();
  t.equal(a.state, 'granted');
  t.equal(locks.locksHeld('A'), 2);
});

t.test('a chain of waits without a cycle just waits', async (t) => {
  const { locks, deadlocks } = setup();
  locks.acquire('A', 'r1');
  locks.acquire('B', 'r2');
  const b = watch(locks.acquire('B', 'r1'));
  const c = watch(locks.acquire('C', 'r2'));
  const d = watch(locks.acquire('D', 'r1'));
  await tick();
  t.same([b.state, c.state, d.state], ['pending', 'pending', 'pending']);
  t.same(deadlocks, []);
  t.equal(locks.waiterCount, 3);
});

t.test('past waitersMax queued waiters a new wait is refused with unavailable and retryAfterSeconds', async (t) => {
  const { locks } = setup({ waitersMax: 2, lockTimeoutMs: 2500 });
  locks.acquire('A', 'r1');
  watch(locks.acquire('B', 'r1'));
  watch(locks.acquire('C', 'r1'));
  await t.rejects(locks.acquire('D', 'r1') as Promise<void>, { code: 'unavailable', fields: { retryAfterSeconds: 3 } });
  t.equal(locks.waiterCount, 2);
  t.equal(locks.waitingFor('D'), undefined);
  t.equal(locks.acquire('D', 'r9'), true, 'an uncontended lock is still granted');
});

t.test('an owner that is already waiting cannot wait again (programmer error)', async (t) => {
  const { locks } = setup();
  locks.acquire('A', 'r1');
  watch(locks.acquire('B', 'r1'));
  t.throws(() => locks.acquire('B', 'r2'), { name: 'AssertionError' });
});

t.test('with real timers: waits are unref()ed, a granted wait never fires later, a stuck wait times out', async (t) => {
  const locks = new LockManager({ lockTimeoutMs: 100, waitersMax: 10 });
  const timeoutsBefore = refTimeouts();
  locks.acquire('A', 'r1');
  locks.acquire('C', 'r2');
  const first = locks.acquire('B', 'r1') as Promise<void>;
  t.equal(refTimeouts(), timeoutsBefore, 'the wait timer does not keep the process alive');
  locks.releaseAll('A');
  await first;
  // Had the grant not cleared the timer, it would fire now and trip the manager's queue assertion (an uncaught
  // exception fails this file).
  await sleep(150);
  t.equal(locks.holder('r1'), 'B');
  t.equal(locks.waiterCount, 0);
  // No clock is read: a timer set later in the same turn for half the time fires first on any machine, however slow
  // (both count from the same loop time, and timers fire in order of expiry), so the wait is seen still pending then.
  let settled = false;
  const stuck = locks.acquire('B', 'r2') as Promise<void>;
  stuck.then(
    () => (settled = true),
    () => (settled = true),
  );
  await sleep(50);
  t.equal(settled, false, 'the wait has not ended before lockTimeoutMs');
  // The wait's own timer is unref()ed, so a referenced sleep keeps this process alive until it fires.
  await Promise.all([sleep(200), stuck.catch(() => undefined)]);
  await t.rejects(stuck, { code: 'lock_timeout', fields: { retryable: true } });
  t.equal(locks.waitingFor('B'), undefined);
});

function refTimeouts(): number {
  return process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---- model-based random schedule ----

/**
 * A brute-force reference: explicit holders and FIFO queues; the wait-for graph has an edge from every waiter to
 * the holder AND to every waiter queued ahead of it, and cycles are found by exhaustive search from every node.
 */
class Model {
  readonly holders = new Map<string, string>();
  readonly queues = new Map<string, { owner: string; request: number; deadlineMs: number }[]>();
  readonly settled = new Map<number, string>();

  waitingFor(owner: string): string | undefined {
    for (const [resource, queue] of this.queues) if (queue.some((w) => w.owner === owner)) return resource;
    return undefined;
  }

  waiterCount(): number {
    let n = 0;
    for (const queue of this.queues.values()) n += queue.length;
    return n;
  }

  edges(extra?: { owner: string; resource: string }): Map<string, Set<string>> {
    const graph = new Map<string, Set<string>>();
    const add = (from: string, to: string) => graph.set(from, (graph.get(from) ?? new Set()).add(to));
    for (const [resource, queue] of this.queues) {
      const ahead: string[] = [this.holders.get(resource) as string];
      for (const w of queue) {
        for (const o of ahead) add(w.owner, o);
        ahead.push(w.owner);
      }
    }
    if (extra !== undefined) {
      add(extra.owner, this.holders.get(extra.resource) as string);
      for (const w of this.queues.get(extra.resource) ?? []) add(extra.owner, w.owner);
    }
    return graph;
  }

  hasCycle(graph: Map<string, Set<string>>): boolean {
    const reaches = (from: string, target: string, seen: Set<string>): boolean => {
      for (const next of graph.get(from) ?? []) {
        if (next === target) return true;
        if (!seen.has(next) && (seen.add(next), reaches(next, target, seen))) return true;
      }
      return false;
    };
    return [...graph.keys()].some((node) => reaches(node, node, new Set()));
  }

  /** 'granted' | 'deadlock_detected' | 'unavailable' | 'pending'. */
  acquire(owner: string, resource: string, request: number, nowMs: number, options: { lockTimeoutMs: number; waitersMax: number }): string {
    const holder = this.holders.get(resource);
    if (holder === undefined) {
      this.holders.set(resource, owner);
      return 'granted';
    }
    if (holder === owner) return 'granted';
    if (this.hasCycle(this.edges({ owner, resource }))) return 'deadlock_detected';
    if (this.waiterCount() >= options.waitersMax) return 'unavailable';
    const queue = this.queues.get(resource) ?? [];
    queue.push({ owner, request, deadlineMs: nowMs + options.lockTimeoutMs });
    this.queues.set(resource, queue);
    return 'pending';
  }

  releaseAll(owner: string, reasonCode: string): void {
    for (const queue of this.queues.values()) {
      const i = queue.findIndex((w) => w.owner === owner);
      if (i >= 0) this.settled.set(queue.splice(i, 1)[0].request, reasonCode);
    }
    for (const [resource, holder] of [...this.holders]) {
      if (holder !== owner) continue;
      const next = this.queues.get(resource)?.shift();
      if (next === undefined) this.holders.delete(resource);
      else {
        this.holders.set(resource, next.owner);
        this.settled.set(next.request, 'granted');
      }
    }
  }

  expire(nowMs: number): void {
    for (const queue of this.queues.values()) {
      for (const w of queue.filter((w) => w.deadlineMs <= nowMs)) {
        queue.splice(queue.indexOf(w), 1);
        this.settled.set(w.request, 'lock_timeout');
      }
    }
  }
}

const owners = ['T1', 'T2', 'T3', 'T4', 'T5'];
const resources = ['r1', 'r2', 'r3', 'r4'];
const scheduleOp = fc.oneof(
  // `pick` chooses among the owners that are not waiting, so most acquires build up holds and waits;
  // `anyOwner` sometimes picks a waiting owner too, to check that a second wait is refused.
  {
    weight: 12,
    arbitrary: fc.record({
      kind: fc.constant('acquire' as const),
      pick: fc.nat(),
      anyOwner: fc.integer({ min: 0, max: 19 }).map((n) => n === 0),
      resource: fc.constantFrom(...resources),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('release' as const), owner: fc.constantFrom(...owners), withReason: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 700 }) }) },
);

t.test('random schedules: holders, waiters, grants, timeouts and deadlocks match a brute-force model', async (t) => {
  const cycleLengths = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(fc.array(scheduleOp, { maxLength: 80, size: 'max' }), fc.integer({ min: 1, max: 8 }), async (ops, waitersMax) => {
      const options = { lockTimeoutMs: 1000, waitersMax };
      const { locks, clock, deadlocks } = setup(options);
      const model = new Model();
      const settled = new Map<number, string>();
      let request = 0;
      for (const op of ops) {
        if (op.kind === 'acquire') {
          const candidates = op.anyOwner ? owners : owners.filter((o) => model.waitingFor(o) === undefined);
          if (candidates.length === 0) continue;
          const owner = candidates[op.pick % candidates.length];
          if (model.waitingFor(owner) !== undefined) {
            if (!threwAssertion(() => locks.acquire(owner, op.resource))) throw new Error('a second wait was accepted');
            continue;
          }
          const id = ++request;
          const expected = model.acquire(owner, op.resource, id, clock.nowMs, options);
          const reportedBefore = deadlocks.length;
          const result = locks.acquire(owner, op.resource);
          if (result === true) settled.set(id, 'granted');
          else result.then(() => settled.set(id, 'granted'), (e: unknown) => settled.set(id, codeOf(e)));
          if (expected !== 'pending') model.settled.set(id, expected);
          checkDeadlockReport(locks, model, deadlocks.slice(reportedBefore), expected === 'deadlock_detected', op.resource);
        } else if (op.kind === 'release') {
          const reason = op.withReason ? new DriftError('transaction_expired', 'test') : undefined;
          model.releaseAll(op.owner, op.withReason ? 'transaction_expired' : 'transaction_aborted');
          locks.releaseAll(op.owner, reason);
        } else {
          clock.advance(op.ms);
          model.expire(clock.nowMs);
        }
        await tick();
        compare(locks, model, settled);
      }
      for (const { cycle } of deadlocks) cycleLengths.set(cycle.length, (cycleLengths.get(cycle.length) ?? 0) + 1);
    }),
    { numRuns: 300 },
  );
  t.comment(`deadlocks by cycle length: ${JSON.stringify([...cycleLengths].sort())}`);
  t.ok((cycleLengths.get(2) ?? 0) > 0 && (cycleLengths.get(3) ?? 0) > 0, 'the schedules produced two- and three-owner deadlocks');
});

function threwAssertion(fn: () => unknown): boolean {
  try {
    fn();
    return false;
  } catch (error) {
    return error instanceof Error && error.name === 'AssertionError';
  }
}

/** A deadlock is reported exactly when the model found a cycle, and the reported cycle is a cycle in the model. */
function checkDeadlockReport(locks: LockManager, model: Model, reports: DeadlockInfo[], expected: boolean, resource: string): void {
  if (reports.length !== (expected ? 1 : 0)) throw new Error(`${reports.length} deadlock reports; model found a cycle: ${expected}`);
  if (!expected) return;
  const cycle = reports[0].cycle;
  // The victim's refused wait is the edge victim → holder; every later owner waits for the next, the last for the victim.
  if (locks.holder(resource) !== cycle[1]) throw new Error(`cycle ${cycle} does not start at the holder of ${resource}`);
  const graph = model.edges();
  const closed = [...cycle.slice(1), cycle[0]];
  for (let i = 0; i + 1 < closed.length; i++) {
    if (!graph.get(closed[i])?.has(closed[i + 1])) throw new Error(`cycle ${cycle} has no edge ${closed[i]} → ${closed[i + 1]}`);
  }
}

function compare(locks: LockManager, model: Model, settled: Map<number, string>): void {
  for (const resource of resources) {
    if (locks.holder(resource) !== model.holders.get(resource)) {
      throw new Error(`holder(${resource}) = ${locks.holder(resource)}, model ${model.holders.get(resource)}`);
    }
  }
  for (const owner of owners) {
    if (locks.waitingFor(owner) !== model.waitingFor(owner)) throw new Error(`waitingFor(${owner}) differs`);
    const held = [...model.holders.values()].filter((h) => h === owner).length;
    if (locks.locksHeld(owner) !== held) throw new Error(`locksHeld(${owner}) = ${locks.locksHeld(owner)}, model ${held}`);
  }
  if (locks.waiterCount !== model.waiterCount()) throw new Error(`waiterCount ${locks.waiterCount} vs ${model.waiterCount()}`);
  const actual = JSON.stringify([...settled].sort(([a], [b]) => a - b));
  const expected = JSON.stringify([...model.settled].sort(([a], [b]) => a - b));
  if (actual !== expected) throw new Error(`settlements ${actual}\n   model ${expected}`);
}

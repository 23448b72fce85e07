// The heap reclaimer: started once recovery has ended, it collects only when the event loop has been idle for its
// idle time and the heap grew enough since the last collection (the first time: is that large); never while busy.

import t from 'tap';
import { compactingCollection, HeapReclaimer, type HeapReclaim } from '../../src/engine/heap-reclaimer.js';
import { MiB } from '../../src/limits.js';

/** A reclaimer on a fake heap, a fake event loop and a timer the test fires by hand. */
function rig(idleMs: number) {
  const heap = { totalBytes: 100 * MiB, usedBytes: 50 * MiB };
  const state = { busy: 0, collections: 0, timers: 0, cleared: 0 };
  const reclaims: HeapReclaim[] = [];
  let tick: (() => void) | null = null;
  const reclaimer = new HeapReclaimer({
    idleMs,
    collect: () => {
      state.collections++;
      heap.totalBytes = heap.usedBytes + 10 * MiB;
    },
    heap: () => ({ ...heap }),
    utilization: () => state.busy,
    now: () => 0,
    setInterval: (fn) => {
      state.timers++;
      tick = fn;
      return {};
    },
    clearInterval: () => void state.cleared++,
    onReclaimed: (r) => reclaims.push(r),
  });
  /** Fires the periodic check `n` times. */
  const checks = (n: number): void => {
    for (let i = 0; i < n; i++) tick!();
  };
  return { reclaimer, heap, state, reclaims, checks };
}

t.test('collects at the first idle moment after recovery, not when started', async (t) => {
  const { reclaimer, state, reclaims, checks } = rig(500);
  reclaimer.start();
  t.equal(state.collections, 0, 'the restart is not held up by a collection');
  t.equal(state.timers, 1, 'the periodic check starts');
  checks(2);
  t.equal(state.collections, 1);
  t.equal(reclaims[0]!.reason, 'recovered');
  t.equal(reclaims[0]!.heapTotalBytesBefore, 100 * MiB);
  t.equal(reclaims[0]!.heapTotalBytesAfter, 60 * MiB);
  t.equal(reclaims[0]!.heapUsedBytesAfter, 50 * MiB);
  reclaimer.stop();
  t.equal(state.cleared, 1, 'stop clears the check');
});

t.test('a small heap after recovery is left alone', async (t) => {
  const { reclaimer, heap, state, checks } = rig(500);
  heap.totalBytes = 40 * MiB;
  heap.usedBytes = 20 * MiB;
  reclaimer.start();
  checks(20);
  t.equal(state.collections, 0);
  reclaimer.stop();
});

t.test('after the heap grew, collects once the loop has been idle for the idle time', async (t) => {
  const { reclaimer, heap, state, reclaims, checks } = rig(500);
  reclaimer.start();
  checks(2);
  heap.usedBytes = 300 * MiB;
  heap.totalBytes = 400 * MiB;
  state.busy = 0.9;
  checks(20);
  t.equal(state.collections, 1, 'never while the loop is busy, however much the heap grew');
  state.busy = 0;
  checks(1);
  t.equal(state.collections, 1, 'not before the loop has been idle for the idle time');
  checks(1);
  t.equal(state.collections, 2, 'then once');
  t.equal(reclaims[1]!.reason, 'idle');
  checks(50);
  t.equal(state.collections, 2, 'and not again while the heap does not grow');
  reclaimer.stop();
});

t.test('a busy check starts the idle time over', async (t) => {
  const { reclaimer, heap, state, checks } = rig(750);
  reclaimer.start();
  checks(3);
  heap.totalBytes = 500 * MiB;
  checks(2);
  state.busy = 0.5;
  checks(1);
  state.busy = 0;
  checks(2);
  t.equal(state.collections, 1, 'two idle checks after a busy one are not yet the idle time');
  checks(1);
  t.equal(state.collections, 2);
  reclaimer.stop();
});

t.test('a heap that grew less than the bound is left alone', async (t) => {
  const { reclaimer, heap, state, checks } = rig(250);
  reclaimer.start();
  checks(1);
  heap.totalBytes += 32 * MiB;
  checks(10);
  t.equal(state.collections, 1);
  heap.totalBytes += 32 * MiB;
  checks(1);
  t.equal(state.collections, 2, 'but collected once the growth reaches it');
  reclaimer.stop();
});

t.test('the compacting collection runs in this process, more than once', async (t) => {
  compactingCollection();
  // A second call works too: the exposed collector is fetched once and reused.
  compactingCollection();
  t.pass();
});

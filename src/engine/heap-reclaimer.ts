// Gives the V8 heap's free pages back to the OS when the process turns idle after recovery or after a burst of
// writes: a compacting full collection, so the server's RSS follows its live data instead of its busiest moment.

import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';
import { MiB } from '../limits.js';

/** The event loop is looked at this often; a check reads two counters and costs about a microsecond. */
const checkIntervalMs = 250;
/** A window in which the loop was busy less than this fraction of the time counts as idle. */
const idleUtilizationMax = 0.05;
/**
 * A collection runs only once the heap V8 holds (committed, not in use) has grown this much since the last one:
 * a heap that did not grow has nothing to give back, and the bound keeps collections rare under light traffic.
 */
const heapGrowthBytesMin = 64 * MiB;

let exposedGc: (() => void) | undefined;

/** V8's full collection. V8 hands it to scripts only behind a flag: set it at first use, then fetch gc from a fresh context. */
export function fullCollection(): () => void {
  if (exposedGc === undefined) {
    v8.setFlagsFromString('--expose-gc');
    exposedGc = vm.runInNewContext('gc') as () => void;
  }
  return exposedGc;
}

/**
 * A full collection that also compacts every page. V8's own full collections compact only the most fragmented
 * pages, which after a bulk load leaves the heap 2-3 times its live size; the flag is set for this one collection
 * only, since compacting every collection costs the running server CPU.
 */
export function compactingCollection(): void {
  const collect = fullCollection();
  v8.setFlagsFromString('--compact-on-every-full-gc');
  try {
    collect();
  } finally {
    v8.setFlagsFromString('--no-compact-on-every-full-gc');
  }
}

export interface HeapReclaim {
  /** The first collection after recovery, or a later one. */
  reason: 'recovered' | 'idle';
  /** V8's committed heap before and after, and the heap in use after (the live data). */
  heapTotalBytesBefore: number;
  heapTotalBytesAfter: number;
  heapUsedBytesAfter: number;
  ms: number;
}

export interface HeapReclaimerOptions {
  /** How long the event loop must have been idle before a collection runs. */
  idleMs: number;
  onReclaimed?(reclaim: HeapReclaim): void;
  /** Injected in tests: the collection, V8's heap figures, the loop's busy fraction since the last call, timers. */
  collect?: () => void;
  heap?: () => { totalBytes: number; usedBytes: number };
  utilization?: () => number;
  now?: () => number;
  setInterval?: (fn: () => void, ms: number) => { unref?(): void };
  clearInterval?: (timer: unknown) => void;
}

export class HeapReclaimer {
  private readonly idleMs: number;
  private readonly onReclaimed: (reclaim: HeapReclaim) => void;
  private readonly collect: () => void;
  private readonly heap: () => { totalBytes: number; usedBytes: number };
  private readonly utilization: () => number;
  private readonly now: () => number;
  private readonly setTimer: (fn: () => void, ms: number) => { unref?(): void };
  private readonly clearTimer: (timer: unknown) => void;
  private timer: { unref?(): void } | null = null;
  /** The committed heap right after the last collection (none yet: 0): growth is measured from it. */
  private heapTotalAfterLast = 0;
  private reclaims = 0;
  /** Consecutive idle time seen by the checks so far. */
  private idleForMs = 0;

  constructor(options: HeapReclaimerOptions) {
    this.idleMs = options.idleMs;
    this.onReclaimed = options.onReclaimed ?? (() => {});
    this.collect = options.collect ?? compactingCollection;
    this.heap = options.heap ?? v8Heap;
    this.utilization = options.utilization ?? loopUtilization();
    this.now = options.now ?? (() => performance.now());
    this.setTimer = options.setInterval ?? setInterval;
    this.clearTimer = options.clearInterval ?? ((timer) => clearInterval(timer as NodeJS.Timeout));
  }

  /**
   * Once recovery has ended. Its transient garbage (staging maps, read buffers) is collected at the first idle
   * moment rather than now: a restart's time to /readyz stays what recovery costs, and a server restarted under
   * traffic is not paused. A heap smaller than the growth bound (an empty or small database) is left alone.
   */
  start(): void {
    if (this.timer !== null) return;
    this.utilization();
    this.timer = this.setTimer(() => this.check(), checkIntervalMs);
    // The checks never keep a process alive that has nothing else to do.
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer === null) return;
    this.clearTimer(this.timer);
    this.timer = null;
  }

  /** One check: idle long enough, and the heap grew enough since the last collection, then collect. */
  check(): void {
    if (this.utilization() > idleUtilizationMax) {
      this.idleForMs = 0;
      return;
    }
    this.idleForMs += checkIntervalMs;
    if (this.idleForMs < this.idleMs) return;
    if (this.heap().totalBytes < this.heapTotalAfterLast + heapGrowthBytesMin) return;
    this.reclaim(this.reclaims === 0 ? 'recovered' : 'idle');
  }

  private reclaim(reason: HeapReclaim['reason']): void {
    const before = this.heap().totalBytes;
    const started = this.now();
    this.collect();
    const ms = this.now() - started;
    const after = this.heap();
    this.heapTotalAfterLast = after.totalBytes;
    this.reclaims++;
    this.idleForMs = 0;
    this.onReclaimed({ reason, heapTotalBytesBefore: before, heapTotalBytesAfter: after.totalBytes, heapUsedBytesAfter: after.usedBytes, ms });
  }
}

function v8Heap(): { totalBytes: number; usedBytes: number } {
  const stats = v8.getHeapStatistics();
  return { totalBytes: stats.total_heap_size, usedBytes: stats.used_heap_size };
}

/** The event loop's busy fraction since the previous call (Node's event-loop utilization, read from libuv's counters). */
function loopUtilization(): () => number {
  let last: EventLoopUtilization = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const delta = performance.eventLoopUtilization(now, last);
    last = now;
    return delta.utilization;
  };
}

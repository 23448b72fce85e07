// The memory guard: as the V8 heap in use reaches the configured limit, writes are refused (503) and reads go on,
// so the process never dies of heap exhaustion; writes resume once use falls back below the limit.

import v8 from 'node:v8';
import { MiB } from '../limits.js';
import { fullCollection } from './heap-reclaimer.js';

/** Heap use is sampled at most this often: a sample costs about a microsecond, a write far more. */
const sampleIntervalMs = 10;
/** A full collection (to tell garbage from live data at the limit) runs at most this often: it pauses the process. */
const collectIntervalMs = 5_000;
/** Writes resume once use falls below this fraction of the limit, so the answer does not flap at the edge. */
const resumeFraction = 0.9;

export interface MemoryGuardOptions {
  limitBytes: number;
  /** How the limit is named in answers (the setting that sets it); defaults to its size. */
  limitName?: string;
  /** Bytes of V8 heap in use; defaults to v8.getHeapStatistics(). */
  heapUsed?: () => number;
  /** A full garbage collection, or null to never force one; defaults to V8's own, exposed at first use. */
  collect?: (() => void) | null;
  now?: () => number;
  onChange?(refusing: boolean, usedBytes: number): void;
}

export class MemoryGuard {
  readonly limitBytes: number;
  private readonly limitName: string;
  private readonly heapUsed: () => number;
  private collect: (() => void) | null | undefined;
  private readonly now: () => number;
  private readonly onChange: (refusing: boolean, usedBytes: number) => void;
  private refusing = false;
  private usedBytes = 0;
  private sampledAt = -Infinity;
  private collectedAt = -Infinity;

  constructor(options: MemoryGuardOptions) {
    this.limitBytes = options.limitBytes;
    this.limitName = options.limitName ?? `${Math.round(options.limitBytes / MiB)} MiB`;
    this.heapUsed = options.heapUsed ?? (() => v8.getHeapStatistics().used_heap_size);
    this.collect = options.collect;
    this.now = options.now ?? Date.now;
    this.onChange = options.onChange ?? (() => {});
  }

  /** Why writes are refused now (naming the limit), or null. */
  refusal(): string | null {
    const now = this.now();
    if (now - this.sampledAt >= sampleIntervalMs) {
      this.sampledAt = now;
      this.sample(now);
    }
    if (!this.refusing) return null;
    return (
      `The server is at its memory limit (${this.limitName}): ${Math.round(this.usedBytes / MiB)} MiB of heap in use. ` +
      'Writes are refused until use falls; reads go on.'
    );
  }

  private sample(now: number): void {
    let used = this.heapUsed();
    const over = this.refusing ? used >= resumeFraction * this.limitBytes : used >= this.limitBytes;
    // Part of what is in use may be garbage: collect (rarely) before refusing, or while refusing, to know.
    if (over && now - this.collectedAt >= collectIntervalMs) {
      this.collectedAt = now;
      const collect = this.fullCollection();
      if (collect !== null) {
        collect();
        used = this.heapUsed();
      }
    }
    this.usedBytes = used;
    const refusing = this.refusing ? used >= resumeFraction * this.limitBytes : used >= this.limitBytes;
    if (refusing !== this.refusing) {
      this.refusing = refusing;
      this.onChange(refusing, used);
    }
  }

  private fullCollection(): (() => void) | null {
    if (this.collect === undefined) this.collect = fullCollection();
    return this.collect;
  }
}

// Per commit seq, two numbers: the commit's time (asOf an instant is a binary search over it) and where its record
// lies in the log (the change feed reads old commits back from there). 16 bytes a commit, in two growable arrays.

import { assert } from '../../assert.js';

export class CommitTimeline {
  private ts: Float64Array;
  private locations: Float64Array;

  constructor(ts: Float64Array = new Float64Array(1024), locations: Float64Array = new Float64Array(ts.length).fill(-1)) {
    assert(ts.length === locations.length, 'a timeline has one location per time');
    this.ts = ts;
    this.locations = locations;
  }

  /** Commit time of `seq` (ms since the epoch), 0 when unknown. */
  tsOf(seq: number): number {
    return this.ts[seq] ?? 0;
  }

  /** Log location of `seq`'s record, or -1 when it is not placed (yet). */
  locationOf(seq: number): number {
    return this.locations[seq] ?? -1;
  }

  record(seq: number, ts: number, location = -1): void {
    if (seq >= this.ts.length) this.grow(seq + 1);
    this.ts[seq] = ts;
    this.locations[seq] = location;
  }

  place(seq: number, location: number): void {
    assert(seq < this.locations.length, 'a placed commit was recorded');
    this.locations[seq] = location;
  }

  private grow(size: number): void {
    const capacity = Math.max(size, this.ts.length * 2);
    const ts = new Float64Array(capacity);
    ts.set(this.ts);
    const locations = new Float64Array(capacity).fill(-1);
    locations.set(this.locations);
    this.ts = ts;
    this.locations = locations;
  }
}

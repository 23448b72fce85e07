// The write-ahead log: commit records appended to segment files with group commit (one write and one fdatasync
// for every record that arrived while the previous sync was in flight), replayed by openLog on start. It also says
// where each record's documents landed, since the version store reads old versions back from there.

import * as path from 'node:path';
import { assert } from '../../assert.js';
import { DriftError } from '../../errors.js';
import { limits } from '../../limits.js';
import { oncePerTurn } from '../once-per-turn.js';
import type { CommitRecord } from '../types.js';
import { ensureDurableDir, nodeFileSystem, writeAll, type FileHandle, type FileSystem } from '../storage/fs.js';
import { frameHeaderBytes } from './frame.js';
import { silentLogger, type LogLayerLogger } from './logger.js';
import { CorruptLogError, encodeRecord, segmentName, walkLog, type LogProblem } from './segment.js';
import { locationOf, offsetOf, ordinalOf, SegmentList } from './segment-list.js';

export { CorruptLogError } from './segment.js';

export interface OpenLogOptions {
  /** `<data-dir>/wal`; created if missing. */
  dir: string;
  /** Replay only records with seq > afterSeq (0 = all): the seq of the checkpoint already loaded. */
  afterSeq: number;
  /**
   * Called synchronously, in seq order, during openLog, for each replayed record, with where it lies and its frame's
   * size (for progress reports).
   */
  onRecord(record: CommitRecord, placement: RecordPlacement, bytes: number): void;
  /** The segment files as listed before the replay (shared with the readers of old versions); listed if absent. */
  segments?: SegmentList;
  fileSystem?: FileSystem;
  segmentBytesMax?: number;
  logger?: LogLayerLogger;
  /**
   * After a failed write or sync the log cuts itself back to its last acknowledged record before it refuses the
   * appends in flight; if even that fails, nothing can be promised about what a restart would replay, and this is
   * called: the process must stop (exit non-zero) rather than serve. Defaults to logging the error.
   */
  onFatal?(error: Error): void;
  /** Metrics port: called once per group written and fdatasync'ed (see EngineObserver.logGroupSynced). */
  onGroupSynced?(group: { records: number; bytes: number; syncSeconds: number }): void;
}

/** Where a record lies in the log: its frame, and each change's document (for the version store). */
export interface RecordPlacement {
  /** Log location (segment-list.ts) of the record's frame. */
  frameLocation: number;
  /** Per change, the log location of its document header, or -1; null for a record of an older format. */
  documentLocations: number[] | null;
}

export interface WriteAheadLog {
  /** Highest seq recovered or appended (0 when empty). */
  readonly lastSeq: number;
  /** Highest seq known to be fdatasync'ed. */
  readonly durableSeq: number;
  /** Total bytes of all segments. */
  readonly bytes: number;
  /** True after any write or sync failure: the log then refuses every append (fail-stop). */
  readonly failed: boolean;
  /**
   * Appends a record; `record.seq` must be lastSeq + 1 and lastSeq advances before this returns. Resolves once the
   * record is durable, with where it landed; rejects with DriftError 'unavailable' if its write or sync failed
   * (after the log was cut back to its last acknowledged record), and so does every later call.
   */
  append(record: CommitRecord): Promise<RecordPlacement>;
  /** Waits for the groups in flight and queued, then closes the segment file. */
  close(): Promise<void>;
}

/**
 * Opens (creating if needed) the log in `options.dir`, replays it through `options.onRecord`, cuts a torn tail, and
 * answers a log ready for appends. Throws CorruptLogError, naming file and offset, for damage before the tail.
 * Records may already have been delivered when that error is thrown: the caller must not serve then.
 */
export async function openLog(options: OpenLogOptions): Promise<WriteAheadLog> {
  assert(Number.isSafeInteger(options.afterSeq) && options.afterSeq >= 0, 'afterSeq must be a non-negative integer');
  const fileSystem = options.fileSystem ?? nodeFileSystem;
  const logger = options.logger ?? silentLogger;
  await ensureDurableDir(fileSystem, options.dir);
  let corruption: LogProblem | null = null;
  let lastTs = -Infinity;
  const walk = await walkLog({
    fileSystem,
    dir: options.dir,
    afterSeq: options.afterSeq,
    recordBytesMax: limits.recordBytesMax,
    visitor: {
      onRecord(record, _seq, where) {
        if (record === null) return;
        lastTs = record.ts;
        const frameLocation = locationOf(where.segment, where.offset);
        const documentLocations = where.documentOffsets?.map((at) => (at < 0 ? -1 : frameLocation + frameHeaderBytes + at)) ?? null;
        options.onRecord(record, { frameLocation, documentLocations }, where.bytes);
      },
      onProblem(problem) {
        if (problem.severity === 'tail') return 'continue';
        corruption = problem;
        return 'stop';
      },
    },
  });
  if (corruption) throw new CorruptLogError(corruption);
  const segments = options.segments ?? new SegmentList(walk.segments.map((segment) => segment.file));
  assert(
    segments.count === walk.segments.length && walk.segments.every((segment, i) => segments.file(i) === segment.file),
    'the segment list is the one replayed',
  );
  const last = walk.segments.at(-1);
  let current: OpenSegment | null = null;
  if (last) {
    const handle = await fileSystem.open(last.file, 'r+');
    try {
      if (walk.tail) await cutTornTail(handle, { ...walk.tail, cutBytes: last.bytes - walk.tail.offset }, logger);
    } catch (error) {
      await handle.close().catch(() => {});
      throw error;
    }
    current = { handle, file: last.file, ordinal: segments.count - 1, bytes: last.validBytes, unsynced: false };
  }
  const bytes = walk.segments.reduce((sum, segment) => sum + segment.validBytes, 0);
  const lastSeq = Math.max(options.afterSeq, walk.lastSeq);
  logger.info({ module: 'log', segments: walk.segments.length, records: walk.records, lastSeq, bytes }, 'log recovered');
  return new SegmentedLog({
    fileSystem,
    dir: options.dir,
    segments,
    segmentBytesMax: options.segmentBytesMax ?? limits.segmentBytesMax,
    logger,
    onFatal: options.onFatal ?? ((error) => logger.error({ module: 'log', err: error }, 'the log could not be cut back after a failure')),
    current,
    lastSeq,
    lastTs,
    bytes,
    onGroupSynced: options.onGroupSynced,
  });
}

/** Truncates the last segment where its torn tail starts; fsync, so a second crash cannot bring the tail back. */
async function cutTornTail(
  handle: FileHandle,
  tail: { file: string; offset: number; reason: string; cutBytes: number },
  logger: LogLayerLogger,
): Promise<void> {
  await handle.truncate(tail.offset);
  await handle.sync();
  logger.warn({ module: 'log', ...tail }, 'torn log tail cut off');
}

interface OpenSegment {
  handle: FileHandle;
  file: string;
  ordinal: number;
  bytes: number;
  /** Written to since it was opened: a segment that is rolled over is synced once more before it is closed. */
  unsynced: boolean;
}

/** Appends that share one write and one fdatasync; they all settle together through one promise. */
interface Group {
  frames: Buffer[];
  /** Per frame, its documents' offsets in the frame (-1 for none), from encodeRecord. */
  documentOffsets: number[][];
  /** Per frame, its log location, once the group's bytes are reserved in a segment. */
  frameLocations: number[];
  /** The log location just past the group's last frame, once reserved. */
  endLocation: number;
  bytes: number;
  firstSeq: number;
  lastSeq: number;
  /** Written and synced; acknowledged once every earlier group is too. */
  synced: boolean;
  promise: Promise<void>;
  resolve(): void;
  reject(error: Error): void;
}

function newGroup(firstSeq: number): Group {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  // Every caller awaits this promise; the no-op handler only keeps a rejection nobody awaits from crashing the process.
  promise.catch(() => {});
  return {
    frames: [],
    documentOffsets: [],
    frameLocations: [],
    endLocation: -1,
    bytes: 0,
    firstSeq,
    lastSeq: firstSeq - 1,
    synced: false,
    promise,
    resolve,
    reject,
  };
}

class SegmentedLog implements WriteAheadLog {
  private readonly fileSystem: FileSystem;
  private readonly dir: string;
  private readonly segments: SegmentList;
  private readonly onFatal: (error: Error) => void;
  /** The log location just past the last acknowledged record: a failure cuts the log back to it. */
  private acknowledgedEnd: number;
  private readonly segmentBytesMax: number;
  private readonly logger: LogLayerLogger;
  private current: OpenSegment | null;
  private lastTs: number;
  /** Groups not started yet, oldest first; appends join the newest. */
  private readonly queue: Group[] = [];
  /** Groups written or being written, whose syncs may overlap; acknowledged strictly in this (seq) order. */
  private readonly inFlight: Group[] = [];
  /** Set while a group that starts a new segment is written: later groups wait, so writes stay in seq order. */
  private rolling = false;
  /** Group writes run one after another, in seq order. */
  private writing: Promise<void> = Promise.resolve();
  /** The fdatasyncs running now; a segment is closed only after they finish. */
  private readonly syncs = new Set<Promise<void>>();
  /** Starts groups on the next microtask, so every append made in the same synchronous run joins one group. */
  private readonly schedulePump = oncePerTurn(() => this.pump());
  private idleWaiters: Array<() => void> = [];
  private failure: Error | null = null;
  private closing = false;
  private readonly onGroupSynced: OpenLogOptions['onGroupSynced'];

  lastSeq: number;
  durableSeq: number;
  bytes: number;

  constructor(init: {
    fileSystem: FileSystem;
    dir: string;
    segments: SegmentList;
    onFatal: (error: Error) => void;
    segmentBytesMax: number;
    logger: LogLayerLogger;
    current: OpenSegment | null;
    lastSeq: number;
    lastTs: number;
    bytes: number;
    onGroupSynced: OpenLogOptions['onGroupSynced'];
  }) {
    assert(init.segmentBytesMax > frameHeaderBytes, 'segmentBytesMax too small');
    this.fileSystem = init.fileSystem;
    this.dir = init.dir;
    this.segments = init.segments;
    this.onFatal = init.onFatal;
    this.acknowledgedEnd = init.current === null ? -1 : locationOf(init.current.ordinal, init.current.bytes);
    this.segmentBytesMax = init.segmentBytesMax;
    this.logger = init.logger;
    this.current = init.current;
    this.lastSeq = init.lastSeq;
    this.durableSeq = init.lastSeq;
    this.lastTs = init.lastTs;
    this.bytes = init.bytes;
    this.onGroupSynced = init.onGroupSynced;
  }

  get failed(): boolean {
    return this.failure !== null;
  }

  append(record: CommitRecord): Promise<RecordPlacement> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closing) return Promise.reject(new DriftError('unavailable', 'the log is closed'));
    assert(record.seq === this.lastSeq + 1, `append of seq ${record.seq} after seq ${this.lastSeq}`);
    assert(record.ts >= this.lastTs, `commit ts ${record.ts} is before the previous ts ${this.lastTs}`);
    // The acknowledged seq goes into the record: recovery tells a torn group in flight from damage by it.
    const { frame, documentOffsets } = encodeRecord(record, this.durableSeq);
    if (frame.length - frameHeaderBytes > limits.recordBytesMax) {
      return Promise.reject(new DriftError('payload_too_large', `the commit is larger than ${limits.recordBytesMax} bytes`));
    }
    this.lastSeq = record.seq;
    this.lastTs = record.ts;
    const group = this.groupFor(record.seq, frame.length);
    const index = group.frames.length;
    group.frames.push(frame);
    group.documentOffsets.push(documentOffsets);
    group.bytes += frame.length;
    group.lastSeq = record.seq;
    this.schedulePump();
    return group.promise.then(() => {
      const frameLocation = group.frameLocations[index]!;
      return { frameLocation, documentLocations: documentOffsets.map((offset) => (offset < 0 ? -1 : frameLocation + offset)) };
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.queue.length > 0 || this.inFlight.length > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    await this.writing;
    const current = this.current;
    this.current = null;
    if (current) await current.handle.close();
  }

  /** The queued group a record joins: the newest, unless that one is full by count or by bytes. */
  private groupFor(seq: number, frameBytes: number): Group {
    const tail = this.queue.at(-1);
    const fits =
      tail !== undefined &&
      tail.frames.length < limits.groupCommitRecordsMax &&
      tail.bytes + frameBytes <= limits.groupCommitBytesMax;
    if (fits) return tail;
    const group = newGroup(seq);
    this.queue.push(group);
    return group;
  }

  /**
   * Starts queued groups while fewer than walSyncsInFlightMax syncs run. Overlapping syncs let the disk serve two
   * cohorts of writers at once instead of making each wait for the other's sync (measured: see docs/engine.md,
   * "Measurements behind the design").
   * Groups are written in seq order and each synced once written; a group that must start a new segment waits
   * until no write or sync runs on the old one.
   */
  private pump(): void {
    while (this.failure === null && !this.rolling && this.queue.length > 0 && this.inFlight.length < limits.walSyncsInFlightMax) {
      const group = this.queue[0]!;
      // A second sync pays for itself only when the disk is what writers wait for: a group that grew large while
      // a sync ran says so. A small one waits and grows, since every group costs the main thread two round trips.
      if (this.inFlight.length > 0 && group.frames.length < limits.walOverlapGroupRecordsMin) break;
      const segment = this.current;
      const needsRoll = segment === null || (segment.bytes > 0 && segment.bytes + group.bytes > this.segmentBytesMax);
      if (needsRoll && this.inFlight.length > 0) break;
      this.queue.shift();
      this.inFlight.push(group);
      if (needsRoll) {
        this.rolling = true;
        void this.persist(group, async () => {
          try {
            return await this.writeFrames(group);
          } finally {
            this.rolling = false;
            this.schedulePump();
          }
        });
        break;
      }
      void this.persist(group, () => this.writeInto(segment!, group, 0, group.frames.length, group.bytes));
    }
    if (this.queue.length === 0 && this.inFlight.length === 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  /** Writes the group (through `write`), then syncs it; any failure stops the log for good. */
  private async persist(group: Group, write: () => FileHandle | Promise<FileHandle>): Promise<void> {
    try {
      const handle = await write();
      const syncStarted = performance.now();
      const sync = handle.datasync();
      this.syncs.add(sync);
      try {
        await sync;
      } finally {
        this.syncs.delete(sync);
      }
      // Metrics port: the fdatasync's wall time and the group's size (group commit at work).
      this.onGroupSynced?.({ records: group.frames.length, bytes: group.bytes, syncSeconds: (performance.now() - syncStarted) / 1000 });
    } catch (error) {
      if (this.failure === null) this.failStop(error, group);
      return;
    }
    group.synced = true;
    this.acknowledge();
  }

  /**
   * Reserves the segment's next bytes for the group's frames from..to at once (recording where each lands), and
   * writes them (in the thread pool) after every earlier write, so a sync always covers every group before its
   * own; answers the handle whose sync covers them.
   */
  private writeInto(segment: OpenSegment, group: Group, from: number, to: number, bytes: number): Promise<FileHandle> {
    segment.unsynced = true;
    const position = segment.bytes;
    const frames = from === 0 && to === group.frames.length ? group.frames : group.frames.slice(from, to);
    let at = position;
    for (let i = from; i < to; i++) {
      group.frameLocations[i] = locationOf(segment.ordinal, at);
      at += group.frames[i]!.length;
    }
    group.endLocation = locationOf(segment.ordinal, at);
    segment.bytes += bytes;
    this.bytes += bytes;
    const written = this.writing.then(async () => {
      if (this.failure !== null) throw this.failure;
      const count = await writeAll(segment.handle, frames, position);
      assert(count === bytes, 'short group write');
      return segment.handle;
    });
    this.writing = written.then(
      () => {},
      () => {},
    );
    return written;
  }

  /** Resolves synced groups from the oldest on; a group synced early waits for every earlier one. */
  private acknowledge(): void {
    while (this.failure === null && this.inFlight[0]?.synced === true) {
      const group = this.inFlight.shift()!;
      assert(group.lastSeq > this.durableSeq, 'durable seq must grow');
      this.durableSeq = group.lastSeq;
      this.acknowledgedEnd = group.endLocation;
      group.resolve();
    }
    this.pump();
  }

  /** Writes a group's frames, rolling to new segments where one fills up; answers the handle its sync must cover. */
  private async writeFrames(group: Group): Promise<FileHandle> {
    let index = 0;
    while (index < group.frames.length) {
      let segment = this.current;
      if (!segment || (segment.bytes > 0 && segment.bytes + group.frames[index]!.length > this.segmentBytesMax)) {
        segment = await this.rollTo(group.firstSeq + index);
      }
      let end = index + 1;
      let bytes = group.frames[index]!.length;
      while (end < group.frames.length && segment.bytes + bytes + group.frames[end]!.length <= this.segmentBytesMax) {
        bytes += group.frames[end]!.length;
        end += 1;
      }
      await this.writeInto(segment, group, index, end, bytes);
      index = end;
    }
    return this.current!.handle;
  }

  /** Ends the current segment (synced) and starts a new one named after the next record's seq. */
  private async rollTo(firstSeq: number): Promise<OpenSegment> {
    const previous = this.current;
    if (previous) {
      // Earlier groups' writes and syncs may still run on this file: the handle is closed only once they are done.
      await this.writing;
      await Promise.allSettled([...this.syncs]);
      if (previous.unsynced) await previous.handle.datasync();
      this.current = null;
      await previous.handle.close();
    }
    const file = path.join(this.dir, segmentName(firstSeq));
    const handle = await this.fileSystem.open(file, 'wx');
    this.current = { handle, file, ordinal: this.segments.add(file), bytes: 0, unsynced: false };
    // Fsync the directory too, or a crash can forget the new segment's name while its records were acknowledged.
    await this.fileSystem.syncDir(this.dir);
    this.logger.info({ module: 'log', file, firstSeq }, 'log segment started');
    return this.current;
  }

  /**
   * Stops the log for good after a failed write or sync. Before any append in flight is answered, the log is cut
   * back to the end of its last acknowledged record (truncate, fsync, drop later segment files): a write answered
   * 503 must not come back when a restart replays what reached the disk. If the cut fails, onFatal says so.
   */
  private failStop(cause: unknown, group: Group): void {
    const error = new DriftError('unavailable', 'the log could not write to disk; writes are refused until restart');
    this.failure = error;
    const file = this.current?.file ?? null;
    this.logger.error({ module: 'log', err: cause, file, firstSeq: group.firstSeq }, 'log write failed; fail-stop');
    const failed = [...this.inFlight.splice(0), ...this.queue.splice(0)];
    if (!failed.includes(group)) failed.push(group);
    void this.cutToAcknowledged()
      .catch((cutError: unknown) => this.onFatal(cutError instanceof Error ? cutError : new Error(String(cutError))))
      .finally(() => {
        for (const each of failed) each.reject(error);
        for (const wake of this.idleWaiters.splice(0)) wake();
      });
  }

  /** Truncates the log to the end of the last acknowledged record, once every write in flight has settled. */
  private async cutToAcknowledged(): Promise<void> {
    await this.writing;
    await Promise.allSettled([...this.syncs]);
    const keepOrdinal = this.acknowledgedEnd < 0 ? -1 : ordinalOf(this.acknowledgedEnd);
    const current = this.current;
    this.current = null;
    await current?.handle.close().catch(() => {});
    // Segments started after the last acknowledged record hold nothing anyone was told is durable.
    for (let ordinal = this.segments.count - 1; ordinal > keepOrdinal; ordinal--) {
      await this.fileSystem.unlink(this.segments.file(ordinal));
      this.segments.dropLast();
    }
    if (keepOrdinal >= 0) {
      const handle = await this.fileSystem.open(this.segments.file(keepOrdinal), 'r+');
      try {
        const cutAt = offsetOf(this.acknowledgedEnd);
        const cutBytes = (await handle.size()) - cutAt;
        await handle.truncate(cutAt);
        await handle.sync();
        this.logger.warn({ module: 'log', file: this.segments.file(keepOrdinal), offset: cutAt, cutBytes }, 'log cut back to the last acknowledged record');
      } finally {
        await handle.close();
      }
    }
    await this.fileSystem.syncDir(this.dir);
  }
}

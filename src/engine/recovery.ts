// Recovery: fills a store from the newest usable checkpoint and the log after it, then hands the store its log.
// Tables are staged meanwhile (hash maps, no order) and ordered once at the end: nothing reads them before it returns.

import { join } from 'node:path';
import { MiB } from '../limits.js';
import { CheckpointLoader } from './checkpoint-codec.js';
import { loadCheckpoint } from './log/checkpoint.js';
import type { LogLayerLogger } from './log/logger.js';
import { openLog } from './log/wal.js';
import type { FileSystem } from './storage/fs.js';
import type { Store } from './store.js';

export interface RecoveryOptions {
  dataDir: string;
  fileSystem?: FileSystem;
  logger: LogLayerLogger;
  /** Called when the log cannot be cut back after a failed write: the process must stop. */
  onFatal?(error: Error): void;
  /** Metrics port: each group commit's size and fdatasync time (handed to the log). */
  onGroupSynced?(group: { records: number; bytes: number; syncSeconds: number }): void;
  /** Replay progress is logged at most this often (default 5 s). */
  progressIntervalMs?: number;
}

export interface Recovered {
  /** Seq of the checkpoint loaded, or null when the whole log was replayed. */
  checkpointSeq: number | null;
  /** Bytes of log when recovery ended: the next automatic checkpoint counts from here. */
  logBytes: number;
}

/** Replay progress is logged this often by default, so an operator can tell a long recovery from a stuck one. */
const progressIntervalMsDefault = 5_000;
/** The clock is read every this many records only: replay applies a million records a second. */
const progressCheckRecords = 1024;

export async function recoverStore(store: Store, options: RecoveryOptions): Promise<Recovered> {
  const started = Date.now();
  const { logger } = options;
  const fileSystem = options.fileSystem === undefined ? {} : { fileSystem: options.fileSystem };
  store.recovering = true;
  const newLoader = (): CheckpointLoader =>
    new CheckpointLoader({ tables: store.tables, makeTable: (def) => store.makeTable(def), segments: store.segments.all(), idempotency: store.idempotency });
  let loader = newLoader();
  const checkpoint = await loadCheckpoint({
    dir: join(options.dataDir, 'checkpoints'),
    onChunk: (payload) => loader.chunk(payload),
    onDiscard: () => {
      store.tables.clear();
      loader = newLoader();
    },
    ...fileSystem,
    logger,
  });
  const afterSeq = checkpoint?.seq ?? 0;
  if (checkpoint !== null) store.loadTimeline(loader.finish(), afterSeq);
  const progress = new ReplayProgress(logger, started, options.progressIntervalMs ?? progressIntervalMsDefault);
  const log = await openLog({
    dir: join(options.dataDir, 'wal'),
    afterSeq,
    segments: store.segments,
    onRecord: (record, placement, bytes) => {
      store.apply(record, { placement });
      progress.record(record.seq, bytes);
    },
    ...fileSystem,
    logger,
    ...(options.onFatal ? { onFatal: options.onFatal } : {}),
    ...(options.onGroupSynced ? { onGroupSynced: options.onGroupSynced } : {}),
  });
  if (log.lastSeq < afterSeq) {
    await log.close();
    throw new Error(`The checkpoint at seq ${afterSeq} is ahead of the log, which ends at seq ${log.lastSeq}.`);
  }
  const staged = Date.now();
  for (const table of store.tables.values()) table.finishStaging();
  store.recovering = false;
  store.attachLog(log);
  logger.info(
    { module: 'engine', seq: store.lastSeq, checkpointSeq: afterSeq, replayed: progress.records, ms: Date.now() - started, orderMs: Date.now() - staged },
    'recovered',
  );
  return { checkpointSeq: checkpoint?.seq ?? null, logBytes: log.bytes };
}

/** Counts replayed records and logs how far the replay got (records, MiB, and how fast), every few seconds. */
class ReplayProgress {
  records = 0;
  private bytes = 0;
  private lastLogged: number;

  constructor(
    private readonly logger: LogLayerLogger,
    private readonly started: number,
    private readonly intervalMs: number,
  ) {
    this.lastLogged = started;
  }

  record(seq: number, bytes: number): void {
    this.records++;
    this.bytes += bytes;
    if (this.records % progressCheckRecords !== 0) return;
    const now = Date.now();
    if (now - this.lastLogged < this.intervalMs) return;
    this.lastLogged = now;
    const seconds = Math.max(now - this.started, 1) / 1000;
    const mib = this.bytes / MiB;
    this.logger.info(
      { module: 'engine', replayed: this.records, seq, mib: round1(mib), mibPerSecond: round1(mib / seconds), recordsPerSecond: Math.round(this.records / seconds) },
      'recovering',
    );
  }
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}

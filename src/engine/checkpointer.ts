// Checkpoint orchestration: one checkpoint at a time, on demand or after enough log, of the state at the last
// decided seq, written once every version up to it is durable and placed in the log.

import { join } from 'node:path';
import { DriftError } from '../errors.js';
import { dumpCheckpoint } from './checkpoint-codec.js';
import { writeCheckpoint } from './log/checkpoint.js';
import type { LogLayerLogger } from './log/logger.js';
import type { FileSystem } from './storage/fs.js';
import type { Store } from './store.js';

export interface CheckpointerOptions {
  store: Store;
  dataDir: string;
  fileSystem?: FileSystem;
  logger: LogLayerLogger;
  /** Write a checkpoint automatically after this many bytes of log since the last one. */
  intervalBytes: number;
  /** The checkpoint recovery loaded (null if none), and the log's size then. */
  recovered: { checkpointSeq: number | null; logBytes: number };
  /** Called with each checkpoint's duration (metrics). */
  onWritten?(figures: { seq: number; bytes: number; ms: number }): void;
}

export class Checkpointer {
  /** Seq of the newest checkpoint on disk, null when there is none. */
  seq: number | null;
  private logBytesAtLast: number;
  private running: Promise<{ seq: number }> | null = null;
  private readonly options: CheckpointerOptions;

  constructor(options: CheckpointerOptions) {
    this.options = options;
    this.seq = options.recovered.checkpointSeq;
    this.logBytesAtLast = options.recovered.logBytes;
  }

  /** Writes a checkpoint of the state now; a call while one runs shares it. */
  checkpoint(): Promise<{ seq: number }> {
    this.refuseIfLogFailed();
    this.running ??= this.writeNow().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** Starts a checkpoint when enough log was written since the last one. */
  maybe(): void {
    const { store, intervalBytes, logger } = this.options;
    if (this.running !== null || store.logBytes - this.logBytesAtLast < intervalBytes) return;
    this.checkpoint().catch((error: unknown) => logger.error({ module: 'engine', err: String(error) }, 'automatic checkpoint failed'));
  }

  /** Waits for a checkpoint in progress, whatever its outcome. */
  async settle(): Promise<void> {
    await this.running?.catch(() => {});
  }

  private async writeNow(): Promise<{ seq: number }> {
    const { store, logger } = this.options;
    const seq = store.lastSeq;
    const started = Date.now();
    const chunks = dumpCheckpoint({ seq, tables: [...store.tables.values()], timeline: store.timeline, segments: () => store.segments.all(), idempotency: store.idempotency });
    // Everything up to `seq` must be durable, and its documents placed in the log, before a checkpoint may claim it.
    await store.placedUpToNow();
    this.refuseIfLogFailed();
    const logBytes = store.logBytes;
    const written = await writeCheckpoint({
      dir: join(this.options.dataDir, 'checkpoints'),
      seq,
      chunks,
      ...(this.options.fileSystem ? { fileSystem: this.options.fileSystem } : {}),
    });
    this.seq = seq;
    this.logBytesAtLast = logBytes;
    const ms = Date.now() - started;
    logger.info({ module: 'engine', seq, bytes: written.bytes, ms }, 'checkpoint written');
    this.options.onWritten?.({ seq, bytes: written.bytes, ms });
    return { seq };
  }

  // A checkpoint may run while memory refuses writes (it makes the next restart cheaper), but not on a failed log.
  private refuseIfLogFailed(): void {
    const refusal = this.options.store.writeRefusal();
    if (refusal !== null && refusal.code !== 'memory') throw new DriftError('unavailable', refusal.detail, { retryAfterSeconds: 60 });
  }
}

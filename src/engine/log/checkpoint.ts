// Checkpoint files: the engine's state at one seq as a stream of framed chunks between a header and a trailer,
// written atomically (temp file, fdatasync, rename, fsync dir) and verified whole before any chunk is delivered.

import * as path from 'node:path';
import { assert } from '../../assert.js';
import { DriftError } from '../../errors.js';
import { limits, MiB } from '../../limits.js';
import { ensureDurableDir, nodeFileSystem, writeAll, type FileHandle, type FileSystem } from '../storage/fs.js';
import { encodeTaggedFrame, encodeTextFrame, frameHeaderBytes, readFrame, type FrameRead } from './frame.js';
import { silentLogger, type LogLayerLogger } from './logger.js';
import { listSeqFiles } from './segment.js';

/** The first byte of every checkpoint frame's payload says what the frame is. */
const frameTag = { header: 0x01, chunk: 0x02, trailer: 0x03 } as const;
const checkpointFormat = 'driftdb-checkpoint';
// Version 3: chunks are binary (checkpoint-codec.ts format 4: old documents stay in the log); files of versions 1
// and 2 hold every document and no locations, so they are skipped as unknown and the log is replayed once.
const checkpointVersion = 3;
const checkpointNamePattern = /^checkpoint-(\d{16})\.ckpt$/;
/** Frames are gathered up to this many bytes per write, so a checkpoint costs few syscalls and little memory. */
const writeBatchBytes = 4 * MiB;
/** Reads of a checkpoint file go in blocks of this size. */
const readBlockBytes = 4 * MiB;
/** A payload may hold a chunk plus its tag byte. */
const payloadBytesMax = limits.checkpointChunkBytesMax + 1;

export function checkpointName(seq: number): string {
  assert(Number.isSafeInteger(seq) && seq >= 0, 'checkpoint seq must be a non-negative integer');
  return `checkpoint-${String(seq).padStart(16, '0')}.ckpt`;
}

export interface CheckpointFile {
  seq: number;
  file: string;
}

/** Checkpoint files of `dir`, newest (highest seq) first; temp files and other names are ignored. */
export async function listCheckpoints(fileSystem: FileSystem, dir: string): Promise<CheckpointFile[]> {
  return (await listSeqFiles(fileSystem, dir, checkpointNamePattern)).reverse();
}

/**
 * Writes the chunks as checkpoint `seq` in `dir` (`<data-dir>/checkpoints`), atomically, then deletes all but the
 * newest limits.checkpointFilesKept files. Each chunk must be at most limits.checkpointChunkBytesMax bytes.
 * One writer per dir at a time. Disk errors are DriftError 'unavailable' (the log is not affected by them).
 */
export async function writeCheckpoint(options: {
  dir: string;
  seq: number;
  /** Each a Buffer, or a string written as UTF-8. */
  chunks: Iterable<Buffer | string>;
  fileSystem?: FileSystem;
}): Promise<{ file: string; bytes: number }> {
  const fileSystem = options.fileSystem ?? nodeFileSystem;
  const file = path.join(options.dir, checkpointName(options.seq));
  const temp = `${file}.tmp`;
  let bytes: number;
  try {
    await ensureDurableDir(fileSystem, options.dir);
    bytes = await writeFrames(fileSystem, temp, options.seq, options.chunks);
    await fileSystem.rename(temp, file);
    // Fsync the directory, or a crash could forget the rename and keep only the temp name.
    await fileSystem.syncDir(options.dir);
    await pruneCheckpoints(fileSystem, options.dir);
  } catch (error) {
    if (!isSystemError(error)) throw error;
    throw Object.assign(new DriftError('unavailable', 'the checkpoint could not be written'), { cause: error });
  }
  return { file, bytes };
}

function isSystemError(error: unknown): boolean {
  return typeof error === 'object' && error !== null && typeof (error as NodeJS.ErrnoException).code === 'string' && !(error instanceof DriftError);
}

async function writeFrames(fileSystem: FileSystem, temp: string, seq: number, chunks: Iterable<Buffer | string>): Promise<number> {
  const handle = await fileSystem.open(temp, 'w');
  let position = 0;
  let count = 0;
  try {
    let batch: Buffer[] = [encodeTextFrame(JSON.stringify({ format: checkpointFormat, version: checkpointVersion, seq }), frameTag.header)];
    let batchBytes = batch[0]!.length;
    for (const chunk of chunks) {
      const frame = typeof chunk === 'string' ? encodeTextFrame(chunk, frameTag.chunk) : encodeTaggedFrame(frameTag.chunk, chunk);
      assert(frame.length - frameHeaderBytes <= payloadBytesMax, `checkpoint chunk of ${frame.length} bytes exceeds checkpointChunkBytesMax`);
      batch.push(frame);
      batchBytes += frame.length;
      count += 1;
      if (batchBytes >= writeBatchBytes) {
        position += await writeAll(handle, batch, position);
        batch = [];
        batchBytes = 0;
      }
    }
    batch.push(encodeTextFrame(JSON.stringify({ chunks: count, seq }), frameTag.trailer));
    position += await writeAll(handle, batch, position);
    await handle.datasync();
  } catch (error) {
    await handle.close().catch(() => {});
    await fileSystem.unlink(temp).catch(() => {});
    throw error;
  }
  await handle.close();
  return position;
}

/** Deletes checkpoint files beyond the newest limits.checkpointFilesKept, and temp files a crash left behind. */
async function pruneCheckpoints(fileSystem: FileSystem, dir: string): Promise<void> {
  const stale = (await listCheckpoints(fileSystem, dir)).slice(limits.checkpointFilesKept).map((found) => found.file);
  for (const name of await fileSystem.readdir(dir)) {
    if (name.endsWith('.ckpt.tmp')) stale.push(path.join(dir, name));
  }
  for (const file of stale) await fileSystem.unlink(file);
  if (stale.length > 0) await fileSystem.syncDir(dir);
}

export type CheckpointVerdict =
  | { valid: true; file: string; seq: number; chunks: number; bytes: number }
  | { valid: false; file: string; offset: number; reason: string };

/** Checks every frame, the header, the trailer and the chunk count of one checkpoint file, without changing it. */
export async function verifyCheckpointFile(options: { file: string; fileSystem?: FileSystem }): Promise<CheckpointVerdict> {
  return scanCheckpoint(options.fileSystem ?? nodeFileSystem, options.file, null);
}

/**
 * Loads the newest valid checkpoint of `dir`: verifies the whole file first, then streams its chunks in order to
 * `onChunk`, so a damaged file never half-applies. A damaged newest file is skipped with a warning for the next
 * older one. Answers null when there is no valid checkpoint.
 */
export async function loadCheckpoint(options: {
  dir: string;
  /** A chunk's bytes, a view into the block read from the file. */
  onChunk(payload: Buffer): void;
  /**
   * The file being loaded turned out damaged after some of its chunks were delivered: drop everything they built.
   * Loading and verifying are one pass over the file: a second pass cost a noticeable share of a restart (measured:
   * see docs/engine.md, "Measurements behind the design").
   */
  onDiscard(): void;
  fileSystem?: FileSystem;
  logger?: LogLayerLogger;
}): Promise<{ seq: number; file: string } | null> {
  const fileSystem = options.fileSystem ?? nodeFileSystem;
  const logger = options.logger ?? silentLogger;
  for (const candidate of await listCheckpoints(fileSystem, options.dir)) {
    const verdict = await scanCheckpoint(fileSystem, candidate.file, options.onChunk);
    if (!verdict.valid) {
      options.onDiscard();
      logger.warn({ module: 'checkpoint', file: verdict.file, offset: verdict.offset, reason: verdict.reason }, 'checkpoint damaged, trying an older one');
      continue;
    }
    logger.info({ module: 'checkpoint', file: candidate.file, seq: verdict.seq, chunks: verdict.chunks }, 'checkpoint loaded');
    return { seq: verdict.seq, file: candidate.file };
  }
  return null;
}

/** Reads a checkpoint file frame by frame, checking its structure; hands chunks to `onChunk` when given. */
async function scanCheckpoint(fileSystem: FileSystem, file: string, onChunk: ((payload: Buffer) => void) | null): Promise<CheckpointVerdict> {
  const nameSeq = checkpointNamePattern.exec(path.basename(file))?.[1];
  const handle = await fileSystem.open(file, 'r');
  const state = { seq: -1, chunks: 0, trailer: false };
  try {
    for await (const read of streamFrames(handle, await handle.size())) {
      if (read.kind === 'bad') return invalid(file, read.offset, `${read.fault}: ${read.detail}`);
      if (read.kind === 'end') {
        if (!state.trailer) return invalid(file, read.offset, state.seq < 0 ? 'empty file' : 'no trailer: the file was not completely written');
        return { valid: true, file, seq: state.seq, chunks: state.chunks, bytes: read.offset };
      }
      const problem = checkFrame(state, read.payload, nameSeq, onChunk);
      if (problem) return invalid(file, read.offset, problem);
    }
  } finally {
    await handle.close();
  }
  assert(false, 'streamFrames always ends with an end or bad item');
}

function invalid(file: string, offset: number, reason: string): CheckpointVerdict {
  return { valid: false, file, offset, reason };
}

/** Applies one frame to the scan state; answers a reason if the frame breaks the file's structure. */
function checkFrame(
  state: { seq: number; chunks: number; trailer: boolean },
  payload: Buffer,
  nameSeq: string | undefined,
  onChunk: ((payload: Buffer) => void) | null,
): string | null {
  const tag = payload[0];
  if (state.trailer) return 'data after the trailer';
  if (state.seq < 0) {
    if (tag !== frameTag.header) return 'first frame is not a header';
    const header = parseJsonObject(payload);
    if (header?.format !== checkpointFormat || header.version !== checkpointVersion) return 'unknown checkpoint format or version';
    if (!Number.isSafeInteger(header.seq) || (header.seq as number) < 0) return 'header has no valid seq';
    if (nameSeq !== undefined && Number(nameSeq) !== header.seq) return `header seq ${String(header.seq)} does not match the file name`;
    state.seq = header.seq as number;
    return null;
  }
  if (tag === frameTag.chunk) {
    state.chunks += 1;
    try {
      onChunk?.(payload.subarray(1));
    } catch (error) {
      // The file is sound but cannot serve this log (checkpoint-codec.ts CheckpointMismatch): skip it like damage.
      if (error instanceof Error && error.name === 'CheckpointMismatch') return `unusable: ${error.message}`;
      throw error;
    }
    return null;
  }
  if (tag === frameTag.trailer) {
    const trailer = parseJsonObject(payload);
    if (trailer?.chunks !== state.chunks || trailer.seq !== state.seq) return `trailer does not match: ${state.chunks} chunks read`;
    state.trailer = true;
    return null;
  }
  return `unknown frame tag ${String(tag)}`;
}

function parseJsonObject(payload: Buffer): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(payload.toString('utf8', 1));
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/**
 * Yields the frames of an open file with absolute offsets, reading it in blocks so that a large file is never held
 * whole in memory, then one terminal `end` or `bad` item. A yielded payload stays valid after the next read.
 */
async function* streamFrames(handle: FileHandle, sizeAtOpen: number): AsyncGenerator<FrameRead, void, void> {
  let fileBytes = sizeAtOpen;
  let window: Buffer = Buffer.alloc(0);
  let windowStart = 0;
  let offset = 0;
  for (;;) {
    const read = readFrame(window, offset, payloadBytesMax);
    if (read.kind === 'frame') {
      yield { ...read, offset: windowStart + read.offset, end: windowStart + read.end };
      offset = read.end;
      continue;
    }
    const filePosition = windowStart + window.length;
    const canGrow = read.kind === 'end' || read.fault === 'incomplete_header' || read.fault === 'incomplete_payload';
    if (canGrow && filePosition < fileBytes) {
      const needed = read.kind === 'bad' && read.fault === 'incomplete_payload' ? frameHeaderBytes + window.readUInt32LE(offset) : 0;
      const remaining = window.subarray(offset);
      const size = Math.min(fileBytes - windowStart - offset, Math.max(remaining.length + readBlockBytes, needed));
      window = await refill(handle, remaining, size, filePosition);
      windowStart += offset;
      offset = 0;
      // A file that shrank under us ends where the reads ended; else the loop would wait for bytes forever.
      if (window.length === remaining.length) fileBytes = windowStart + window.length;
      continue;
    }
    yield { ...read, offset: windowStart + read.offset };
    return;
  }
}

/** A new buffer of `size` bytes: `remaining` followed by bytes read from `position` on. */
async function refill(handle: FileHandle, remaining: Buffer, size: number, position: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(size);
  remaining.copy(buffer, 0);
  let filled = remaining.length;
  while (filled < size) {
    const count = await handle.read({ buffer, offset: filled, length: size - filled, position: position + filled - remaining.length });
    if (count === 0) return buffer.subarray(0, filled);
    filled += count;
  }
  return buffer;
}

// Reads old versions' documents back out of the log segments they were written to, by location, each checked
// against its checksum, through a bounded cache of decoded texts. The version store keeps only locations for the
// past; this is how the past is read.

import { assert } from '../../assert.js';
import { DriftError } from '../../errors.js';
import { limits } from '../../limits.js';
import type { FileSystem, SyncReadFile } from '../storage/fs.js';
import type { CommitRecord } from '../types.js';
import { frameHeaderBytes, readFrame } from './frame.js';
import { silentLogger, type LogLayerLogger } from './logger.js';
import { documentChecksum, documentHeaderBytes, parseRecord } from './segment.js';
import { offsetOf, ordinalOf, type SegmentList } from './segment-list.js';

/** Where one stored document is, and what it must be. */
export interface DocumentRef {
  /** Log location (segment-list.ts) of its document header, or of its frame when `framed`. */
  location: number;
  /** The seq of the commit that wrote it: part of its checksum. */
  seq: number;
  /** Written in a format without per-document checksums: read and check the whole frame, then find the row. */
  framed: boolean;
  table: string;
  key: string;
}

/** Bytes of a first read: the document header and a typical document, so most reads take one system call. */
const firstReadBytes = 2048;

export class DocumentReader {
  private readonly fileSystem: FileSystem;
  private readonly segments: SegmentList;
  private readonly logger: LogLayerLogger;
  /** Open read handles by segment ordinal, oldest opened first; at most limits.readFilesOpenMax. */
  private readonly files = new Map<number, SyncReadFile>();
  /**
   * Decoded texts by location, in two generations: new ones go to `young`; when its characters pass half the
   * bound, it becomes `old` and the previous old generation is dropped whole. A hit in `old` moves the text back to
   * `young`. So the cache holds at most cacheCharsMax characters, keeps what is read again, and never deletes
   * entries one by one (a Map that is emptied from its front gets slower to walk with every deletion).
   */
  private young = new Map<number, string>();
  private old = new Map<number, string>();
  private youngChars = 0;
  private readonly cacheCharsMax: number;
  private readonly scratch = Buffer.allocUnsafe(firstReadBytes);
  /** Reads that went to disk (cache misses), for stats. */
  diskReads = 0;

  constructor(options: { fileSystem: FileSystem; segments: SegmentList; cacheCharsMax?: number; logger?: LogLayerLogger }) {
    this.fileSystem = options.fileSystem;
    this.segments = options.segments;
    this.cacheCharsMax = options.cacheCharsMax ?? limits.versionCacheCharsMax;
    this.logger = options.logger ?? silentLogger;
  }

  /** The document text `ref` names. Throws DriftError 'internal' (after logging file and offset) if it is damaged. */
  read(ref: DocumentRef): string {
    assert(ref.location >= 0, 'a version read from the log has a location');
    const cached = this.young.get(ref.location) ?? this.old.get(ref.location);
    if (cached !== undefined) {
      if (!this.young.has(ref.location)) this.remember(ref.location, cached);
      return cached;
    }
    this.diskReads++;
    const text = ref.framed ? this.readFramed(ref) : this.readSealed(ref);
    this.remember(ref.location, text);
    return text;
  }

  /** Keeps a text that is known to be stored at `location` (a newest version just superseded is read soon). */
  remember(location: number, text: string): void {
    if (location < 0 || text.length > this.cacheCharsMax / 8 || this.young.has(location)) return;
    this.young.set(location, text);
    this.youngChars += text.length;
    if (this.youngChars > this.cacheCharsMax / 2) {
      this.old = this.young;
      this.young = new Map();
      this.youngChars = 0;
    }
  }

  /** Closes every read handle (the log closes; a later read reopens what it needs). */
  close(): void {
    for (const file of this.files.values()) file.close();
    this.files.clear();
  }

  private readSealed(ref: DocumentRef): string {
    const file = this.fileFor(ref);
    const offset = offsetOf(ref.location);
    let buffer = this.scratch;
    let read = file.readSync(buffer, 0, buffer.length, offset);
    if (read < documentHeaderBytes) return this.damaged(ref, `only ${read} bytes where a document header belongs`);
    const length = buffer.readUInt32LE(0);
    const crc = buffer.readUInt32LE(4);
    if (length > limits.recordBytesMax) return this.damaged(ref, `document length ${length} is impossible`);
    if (documentHeaderBytes + length > read) {
      buffer = Buffer.allocUnsafe(documentHeaderBytes + length);
      read = file.readSync(buffer, 0, buffer.length, offset);
      if (read < buffer.length) return this.damaged(ref, `the document runs ${buffer.length - read} bytes past the end of the file`);
    }
    const bytes = buffer.subarray(documentHeaderBytes, documentHeaderBytes + length);
    if (documentChecksum(ref.seq, bytes) !== crc) return this.damaged(ref, 'the document does not match its checksum');
    return bytes.toString('utf8');
  }

  /** Documents of the older formats: read the whole frame, check it, and find the row's change in the record. */
  private readFramed(ref: DocumentRef): string {
    const record = this.readRecord(ref.location, ref.seq, ref);
    const change = record.changes.find((c) => c.kind === 'row' && c.table === ref.table && c.key === ref.key);
    if (change === undefined || change.kind !== 'row' || change.doc === null) return this.damaged(ref, 'the record holds no document for the row');
    return change.doc;
  }

  /**
   * The commit record of `seq` whose frame starts at `location`, its frame checked (the change feed reads old
   * commits this way). Throws DriftError 'internal' (after logging file and offset) if it is damaged.
   */
  readRecord(location: number, seq: number, about: { table: string; key: string } = { table: '', key: '' }): CommitRecord {
    const ref: DocumentRef = { location, seq, framed: true, ...about };
    const file = this.fileFor(ref);
    const offset = offsetOf(location);
    const header = Buffer.allocUnsafe(frameHeaderBytes);
    if (file.readSync(header, 0, frameHeaderBytes, offset) < frameHeaderBytes) return this.damaged(ref, 'the frame header is cut off');
    const payloadBytes = header.readUInt32LE(0);
    if (payloadBytes === 0 || payloadBytes > limits.recordBytesMax) return this.damaged(ref, `frame length ${payloadBytes} is impossible`);
    const frame = Buffer.allocUnsafe(frameHeaderBytes + payloadBytes);
    if (file.readSync(frame, 0, frame.length, offset) < frame.length) return this.damaged(ref, 'the frame is cut off');
    const checked = readFrame(frame, 0, limits.recordBytesMax);
    if (checked.kind !== 'frame') return this.damaged(ref, `the frame is damaged (${checked.kind === 'bad' ? checked.fault : 'empty'})`);
    let record: CommitRecord;
    try {
      record = parseRecord(checked.payload);
    } catch (error) {
      return this.damaged(ref, `the record cannot be read (${(error as Error).message})`);
    }
    if (record.seq !== seq) return this.damaged(ref, `the frame holds seq ${record.seq}, not ${seq}`);
    return record;
  }

  private fileFor(ref: DocumentRef): SyncReadFile {
    const ordinal = ordinalOf(ref.location);
    let file = this.files.get(ordinal);
    if (file !== undefined) return file;
    if (this.files.size >= limits.readFilesOpenMax) {
      const [oldest, handle] = this.files.entries().next().value as [number, SyncReadFile];
      handle.close();
      this.files.delete(oldest);
    }
    try {
      file = this.fileSystem.openForSyncReads(this.segments.file(ordinal));
    } catch (error) {
      return this.damaged(ref, `the segment cannot be opened (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
    }
    this.files.set(ordinal, file);
    return file;
  }

  /** A stored version failed its checks: say where, loudly, and fail this read (and only this read). */
  private damaged(ref: DocumentRef, reason: string): never {
    const ordinal = ordinalOf(ref.location);
    const file = ordinal < this.segments.count ? this.segments.file(ordinal) : `(segment ${ordinal})`;
    const offset = offsetOf(ref.location);
    this.logger.error({ module: 'versions', file, offset, seq: ref.seq, table: ref.table, key: ref.key, reason }, 'stored version damaged');
    const what = ref.key === '' ? `The commit record of seq ${ref.seq}` : `A stored version of row '${ref.key}' (seq ${ref.seq})`;
    throw new DriftError('internal', `${what} is damaged on disk; see the server log.`);
  }
}

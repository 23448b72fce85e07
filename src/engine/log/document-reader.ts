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
import { documentChecksum, documentHeaderBytes, parseRecord, peekRecordSeq } from './segment.js';
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
/** What a read names in its damage report when it was not for one row's document. */
const noRow = { table: '', key: '' };
/** Bytes readRecordFrames reads at once (a longer run of records takes several reads). */
const frameRunBytesMax = 4 * 1024 * 1024;
/**
 * readMany reads two documents of a segment with one read while the second starts at most this far after the first:
 * copying a gap this size out of the page cache costs about what a read system call of its own would.
 */
const documentRunGapBytesMax = 16 * 1024;
/** Bytes one read of readMany spans at most (a document that lies past it starts a run of its own). */
const documentRunBytesMax = 1024 * 1024;

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
    const cached = this.cached(ref.location);
    if (cached !== undefined) return cached;
    this.diskReads++;
    const text = ref.framed ? this.readFramed(ref) : this.readSealed(ref);
    this.remember(ref.location, text);
    return text;
  }

  /**
   * The texts of `refs` in their order, as read() answers each, until the texts read pass `charsMax` characters:
   * then those of a prefix of `refs` (at least one). What the cache does not hold is read in runs: documents of one
   * segment that lie close together in ascending order (one key's versions, written one after another) come in with
   * one read, and each is checked against its own crc. What one call reads is remembered as read() remembers a
   * text, up to an eighth of the cache: past that, a long history read once would push out the versions that are
   * read again (a hot row's previous one). Throws DriftError 'internal' (after logging file and offset) if a document
   * is damaged.
   */
  readMany(refs: readonly DocumentRef[], charsMax = Infinity): string[] {
    const texts: string[] = [];
    let chars = 0;
    let charsRead = 0;
    let i = 0;
    while (i < refs.length && chars <= charsMax) {
      const ref = refs[i]!;
      assert(ref.location >= 0, 'a version read from the log has a location');
      const cached = this.cached(ref.location);
      if (cached !== undefined) {
        texts.push(cached);
        chars += cached.length;
        i++;
        continue;
      }
      const end = ref.framed ? i + 1 : this.runEnd(refs, i);
      const read = ref.framed ? [this.readFramed(ref)] : this.readRun(refs, i, end);
      this.diskReads += end - i;
      for (let k = 0; k < read.length; k++) {
        const text = read[k]!;
        texts.push(text);
        chars += text.length;
        charsRead += text.length;
        if (charsRead <= this.cacheCharsMax / 8) this.remember(refs[i + k]!.location, text);
      }
      i = end;
    }
    return texts;
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

  /** The cached text at `location`, if any; a hit in the old generation moves back to the young one. */
  private cached(location: number): string | undefined {
    const young = this.young.get(location);
    if (young !== undefined) return young;
    const old = this.old.get(location);
    if (old !== undefined) this.remember(location, old);
    return old;
  }

  private readSealed(ref: DocumentRef): string {
    const file = this.fileFor(ref);
    const offset = offsetOf(ref.location);
    const read = file.readSync(this.scratch, 0, this.scratch.length, offset);
    if (read < documentHeaderBytes) return this.damaged(ref, `only ${read} bytes where a document header belongs`);
    const text = this.documentIn(ref, this.scratch, 0, read);
    if (text !== null) return text;
    // Longer than the first read: read it whole.
    const buffer = Buffer.allocUnsafe(documentHeaderBytes + this.scratch.readUInt32LE(0));
    const whole = file.readSync(buffer, 0, buffer.length, offset);
    if (whole < buffer.length) return this.damaged(ref, `the document runs ${buffer.length - whole} bytes past the end of the file`);
    return this.documentIn(ref, buffer, 0, whole)!;
  }

  /**
   * The document of `ref` whose header is at `at` in `buffer` (which holds `end` bytes read), checked against its
   * crc; null when the buffer ends before it does.
   */
  private documentIn(ref: DocumentRef, buffer: Buffer, at: number, end: number): string | null {
    if (end - at < documentHeaderBytes) return null;
    const length = buffer.readUInt32LE(at);
    const crc = buffer.readUInt32LE(at + 4);
    if (length > limits.recordBytesMax) return this.damaged(ref, `document length ${length} is impossible`);
    const start = at + documentHeaderBytes;
    if (start + length > end) return null;
    const bytes = buffer.subarray(start, start + length);
    if (documentChecksum(ref.seq, bytes) !== crc) return this.damaged(ref, 'the document does not match its checksum');
    return bytes.toString('utf8');
  }

  /** Where the run of uncached sealed documents that starts at refs[first] ends (exclusive): see readMany. */
  private runEnd(refs: readonly DocumentRef[], first: number): number {
    const ordinal = ordinalOf(refs[first]!.location);
    const start = offsetOf(refs[first]!.location);
    let previous = start;
    let next = first + 1;
    for (; next < refs.length; next++) {
      const ref = refs[next]!;
      const offset = offsetOf(ref.location);
      if (ref.framed || ordinalOf(ref.location) !== ordinal || offset <= previous || offset - previous > documentRunGapBytesMax) break;
      if (offset + firstReadBytes - start > documentRunBytesMax || this.young.has(ref.location) || this.old.has(ref.location)) break;
      previous = offset;
    }
    return next;
  }

  /** The texts of refs[first..end), sealed documents of one segment in ascending order, read with one read. */
  private readRun(refs: readonly DocumentRef[], first: number, end: number): string[] {
    if (end - first === 1) return [this.readSealed(refs[first]!)];
    const file = this.fileFor(refs[first]!);
    const start = offsetOf(refs[first]!.location);
    const buffer = Buffer.allocUnsafe(offsetOf(refs[end - 1]!.location) - start + firstReadBytes);
    const read = file.readSync(buffer, 0, buffer.length, start);
    const texts: string[] = [];
    for (let i = first; i < end; i++) {
      const ref = refs[i]!;
      // A document that runs past what the run read (a long one, or the file's end) is read by itself, as read() does.
      texts.push(this.documentIn(ref, buffer, offsetOf(ref.location) - start, read) ?? this.readSealed(ref));
    }
    return texts;
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
  readRecord(location: number, seq: number, about: { table: string; key: string } = noRow): CommitRecord {
    const frame = this.readRecordFrames(seq, [location], about)[0]!;
    try {
      return parseRecord(frame.subarray(frameHeaderBytes));
    } catch (error) {
      return this.damaged({ location, seq, framed: true, ...about }, `the record cannot be read (${(error as Error).message})`);
    }
  }

  /**
   * The sealed frames of the commit records of seqs firstSeq, firstSeq + 1, … whose frames start at `locations`, as
   * stored (a peer streams them to a node catching up: nothing is parsed or encoded again). Frames that lie one after
   * another in a segment, as a log writes them, are read together, up to frameRunBytesMax at a time; each is checked
   * (its crc, and the seq it holds). Throws DriftError 'internal' (after logging file and offset) if one is damaged.
   */
  readRecordFrames(firstSeq: number, locations: readonly number[], about: { table: string; key: string } = noRow): Buffer[] {
    const frames: Buffer[] = [];
    let i = 0;
    while (i < locations.length) {
      const ref: DocumentRef = { location: locations[i]!, seq: firstSeq + i, framed: true, ...about };
      const file = this.fileFor(ref);
      const start = offsetOf(ref.location);
      // The run: the frames of this segment after this one, up to the read size (the last one's length is read first).
      let last = i;
      while (
        last + 1 < locations.length &&
        ordinalOf(locations[last + 1]!) === ordinalOf(ref.location) &&
        offsetOf(locations[last + 1]!) > offsetOf(locations[last]!) &&
        offsetOf(locations[last + 1]!) - start < frameRunBytesMax
      ) {
        last++;
      }
      const lastOffset = offsetOf(locations[last]!);
      const header = Buffer.allocUnsafe(frameHeaderBytes);
      const lastRef = { ...ref, location: locations[last]!, seq: firstSeq + last };
      if (file.readSync(header, 0, frameHeaderBytes, lastOffset) < frameHeaderBytes) return this.damaged(lastRef, 'the frame header is cut off');
      const lastPayloadBytes = header.readUInt32LE(0);
      if (lastPayloadBytes === 0 || lastPayloadBytes > limits.recordBytesMax) return this.damaged(lastRef, `frame length ${lastPayloadBytes} is impossible`);
      const run = Buffer.allocUnsafe(lastOffset - start + frameHeaderBytes + lastPayloadBytes);
      if (file.readSync(run, 0, run.length, start) < run.length) return this.damaged(ref, 'the frames are cut off');
      for (let k = i; k <= last; k++) {
        const at = offsetOf(locations[k]!) - start;
        const kRef = { ...ref, location: locations[k]!, seq: firstSeq + k };
        const checked = readFrame(run, at, limits.recordBytesMax);
        if (checked.kind !== 'frame') return this.damaged(kRef, `the frame is damaged (${checked.kind === 'bad' ? checked.fault : 'empty'})`);
        let seq: number;
        try {
          seq = peekRecordSeq(checked.payload);
        } catch (error) {
          return this.damaged(kRef, `the record cannot be read (${(error as Error).message})`);
        }
        if (seq !== kRef.seq) return this.damaged(kRef, `the frame holds seq ${seq}, not ${kRef.seq}`);
        frames.push(run.subarray(at, checked.end));
      }
      i = last + 1;
    }
    return frames;
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

// Reading the log's segment files: naming, parsing records, and the recovery decision table shared by
// openLog (which acts on it) and doctor (which only reports), so both always reach the same verdict.

import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import { assert } from '../../assert.js';
import type { Change, CommitRecord, RowOp } from '../types.js';
import type { FileSystem } from '../storage/fs.js';
import { findNextValidFrame, frameHeaderBytes, readFrame, sealFrame } from './frame.js';

const segmentNamePattern = /^(\d{16})\.wal$/;
const seqDigits = 16;

export function segmentName(firstSeq: number): string {
  assert(Number.isSafeInteger(firstSeq) && firstSeq >= 1, 'segment first seq must be a positive integer');
  return `${String(firstSeq).padStart(seqDigits, '0')}.wal`;
}

export interface SegmentFile {
  /** Seq of the first record the segment holds (or would hold, if empty), from its name. */
  firstSeq: number;
  file: string;
}

/** Files of `dir` whose names match `pattern` (group 1: a seq), ascending by that seq; a missing dir has none. */
export async function listSeqFiles(fileSystem: FileSystem, dir: string, pattern: RegExp): Promise<Array<{ seq: number; file: string }>> {
  if (!(await fileSystem.exists(dir))) return [];
  const found: Array<{ seq: number; file: string }> = [];
  for (const name of await fileSystem.readdir(dir)) {
    const match = pattern.exec(name);
    if (match) found.push({ seq: Number(match[1]), file: path.join(dir, name) });
  }
  return found.sort((a, b) => a.seq - b.seq);
}

/** The segment files of `dir` in seq order; other names are ignored. A missing dir has no segments. */
export async function listSegments(fileSystem: FileSystem, dir: string): Promise<SegmentFile[]> {
  return (await listSeqFiles(fileSystem, dir, segmentNamePattern)).map(({ seq, file }) => ({ firstSeq: seq, file }));
}

/*
 * A commit record's payload, little-endian:
 *   u8 recordTag | f64 seq | f64 ts | f64 ackedSeq | u32 change count | changes
 * ackedSeq is the log's acknowledged (durable) seq when the record was encoded: every record up to it had been
 * answered as durable before this one was written. Recovery uses it to tell a power loss that tore the groups in
 * flight from damage to an acknowledged record (see the decision table below).
 * and each change:
 *   u8 put(0) / patch(1) / delete(2): u32 table bytes, table UTF-8 | u32 key length, key UTF-16LE |
 *                                     (not for a delete) u32 document bytes | u32 document crc | document UTF-8
 *   u8 catalog(3):                    u32 bytes, the change as JSON
 *   u8 idempotency(4):                f64 expiresAt | u32 bytes, user UTF-8 | u32 bytes, key UTF-8 |
 *                                     u32 bytes, fingerprint UTF-8 | u32 bytes, answer UTF-8
 * Documents stay the JSON text they are, not a string escaped inside JSON, so replay cuts them out without
 * unescaping them. Keys travel as UTF-16 because a key may hold a lone surrogate, which UTF-8 cannot carry;
 * documents are JSON.stringify output, always well formed.
 * An Idempotency-Key's entry goes as its own fields, its answer as the text it is (a JSON catalog change escaped the
 * answer, itself JSON, once more on every keyed write). An entry whose texts are not well-formed UTF-16 (a lone
 * surrogate, which UTF-8 cannot carry) is written as a catalog change instead, as every entry was before code 4.
 *
 * Old versions are read back one document at a time, long after the record was written (the version store keeps
 * only where each document is), so each document carries its own checksum: crc32 of the record's seq (f64 LE)
 * followed by the document's bytes. A read checks it without reading the rest of the record, and a read that lands
 * on another version's document (a wrong seq) fails the check too. The frame's own checksum still covers it all.
 *
 * Earlier formats, still read: tag 0xd2 is the same without the per-document length+crc header's crc (documents are
 * u32 bytes + text), and tag 0xd1 also lacks ackedSeq (its records count as written after everything before them
 * was acknowledged). Their documents can only be checked by reading the whole frame.
 */
const recordTag = 0xd3;
const recordHeaderBytes = 1 + 8 + 8 + 8 + 4;
const unsealedRecordTag = 0xd2;
const legacyRecordTag = 0xd1;
const legacyRecordHeaderBytes = 1 + 8 + 8 + 4;
const rowOps: readonly RowOp[] = ['put', 'patch', 'delete'];
const catalogCode = 3;
const idempotencyCode = 4;
/** An idempotency change's fixed part: u8 code, f64 expiresAt, four u32 text lengths. */
const idempotencyFixedBytes = 1 + 8 + 4 * 4;
/** A sealed document's header: u32 document bytes, u32 crc. */
export const documentHeaderBytes = 8;

/** The checksum of one stored document: crc32 over its record's seq (f64 LE), then its UTF-8 bytes. */
export function documentChecksum(seq: number, doc: Buffer): number {
  const seqBytes = Buffer.allocUnsafe(8);
  seqBytes.writeDoubleLE(seq, 0);
  return crc32(doc, crc32(seqBytes));
}

export interface EncodedRecord {
  frame: Buffer;
  /**
   * Per change, the offset in the frame of its document header (documentHeaderBytes, then the document), or -1 for
   * a delete or a catalog change.
   */
  documentOffsets: number[];
}

/** Encodes a commit record as a sealed frame, checksum verified; `ackedSeq` is the log's acknowledged seq now. */
export function encodeRecord(record: CommitRecord, ackedSeq: number): EncodedRecord {
  assert(Number.isSafeInteger(ackedSeq) && ackedSeq >= 0 && ackedSeq < record.seq, 'ackedSeq is below the record');
  const docBytes = record.changes.map((c) => (c.kind === 'row' && c.doc !== null ? Buffer.byteLength(c.doc, 'utf8') : 0));
  // Per change that is not a row: null for an idempotency entry written as code 4, else its JSON as a catalog change.
  const catalogTexts = record.changes.map((c) => (c.kind === 'row' || binaryIdempotency(c) ? null : JSON.stringify(c)));
  let bytes = frameHeaderBytes + recordHeaderBytes;
  record.changes.forEach((c, i) => {
    const text = catalogTexts[i];
    if (c.kind === 'row') bytes += 9 + Buffer.byteLength(c.table, 'utf8') + 2 * c.key.length + (c.doc === null ? 0 : documentHeaderBytes + docBytes[i]!);
    else if (text !== null) bytes += 5 + Buffer.byteLength(text, 'utf8');
    else if (c.kind === 'idempotency') bytes += idempotencyFixedBytes + utf8Bytes(c.user) + utf8Bytes(c.key) + utf8Bytes(c.fingerprint) + utf8Bytes(c.answer);
  });
  const frame = Buffer.allocUnsafe(bytes);
  const documentOffsets = new Array<number>(record.changes.length).fill(-1);
  let at = frame.writeUInt8(recordTag, frameHeaderBytes);
  at = frame.writeDoubleLE(record.seq, at);
  at = frame.writeDoubleLE(record.ts, at);
  at = frame.writeDoubleLE(ackedSeq, at);
  at = frame.writeUInt32LE(record.changes.length, at);
  record.changes.forEach((c, i) => {
    const text = catalogTexts[i];
    if (c.kind === 'idempotency' && text === null) {
      at = frame.writeUInt8(idempotencyCode, at);
      at = frame.writeDoubleLE(c.expiresAt, at);
      at = writeText(frame, at, c.user, 'utf8');
      at = writeText(frame, at, c.key, 'utf8');
      at = writeText(frame, at, c.fingerprint, 'utf8');
      at = writeText(frame, at, c.answer, 'utf8');
      return;
    }
    if (c.kind !== 'row') {
      at = frame.writeUInt8(catalogCode, at);
      at = writeText(frame, at, text!, 'utf8');
      return;
    }
    at = frame.writeUInt8(rowOps.indexOf(c.op), at);
    at = writeText(frame, at, c.table, 'utf8');
    at = frame.writeUInt32LE(c.key.length, at);
    at += frame.write(c.key, at, 'utf16le');
    if (c.doc !== null) {
      documentOffsets[i] = at;
      const start = at + documentHeaderBytes;
      frame.writeUInt32LE(docBytes[i]!, at);
      frame.write(c.doc, start, 'utf8');
      frame.writeUInt32LE(documentChecksum(record.seq, frame.subarray(start, start + docBytes[i]!)), at + 4);
      at = start + docBytes[i]!;
    }
  });
  assert(at === frame.length, 'record encoding size');
  return { frame: sealFrame(frame), documentOffsets };
}

/** Encodes a commit record as a sealed frame (see encodeRecord). */
export function encodeRecordFrame(record: CommitRecord, ackedSeq: number): Buffer {
  return encodeRecord(record, ackedSeq).frame;
}

type IdempotencyChange = Extract<Change, { kind: 'idempotency' }>;

/** Whether `change` is an idempotency entry whose texts UTF-8 carries as they are (code 4). */
function binaryIdempotency(change: Change): change is IdempotencyChange {
  return change.kind === 'idempotency' && wellFormed(change.user) && wellFormed(change.key) && wellFormed(change.fingerprint) && wellFormed(change.answer);
}

/** No lone surrogate: UTF-8 round-trips the text. (String.prototype.isWellFormed, Node 20, is not in lib ES2023.) */
function wellFormed(text: string): boolean {
  return (text as string & { isWellFormed(): boolean }).isWellFormed();
}

function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

function writeText(buf: Buffer, at: number, text: string, encoding: 'utf8'): number {
  const written = buf.write(text, at + 4, encoding);
  buf.writeUInt32LE(written, at);
  return at + 4 + written;
}

interface RecordHeader {
  seq: number;
  ts: number;
  ackedSeq: number;
  changeCount: number;
  /** Where the changes start. */
  bytes: number;
  /** Documents carry their own length and crc (the current format). */
  sealedDocuments: boolean;
}

/** Reads and checks a record's header, of any binary format; throws a reason string's Error otherwise. */
function readRecordHeader(payload: Buffer): RecordHeader {
  const tag = payload[0];
  const legacy = tag === legacyRecordTag;
  const bytes = legacy ? legacyRecordHeaderBytes : recordHeaderBytes;
  if (payload.length < bytes || (tag !== recordTag && tag !== unsealedRecordTag && !legacy)) throw new Error('payload is not a commit record');
  const seq = payload.readDoubleLE(1);
  const ts = payload.readDoubleLE(9);
  const ackedSeq = legacy ? seq - 1 : payload.readDoubleLE(17);
  if (!Number.isSafeInteger(seq) || seq < 1) throw new Error('payload has no valid seq');
  if (!Number.isFinite(ts)) throw new Error('payload has no valid ts');
  if (!Number.isSafeInteger(ackedSeq) || ackedSeq < 0 || ackedSeq >= seq) throw new Error('payload has no valid ackedSeq');
  return { seq, ts, ackedSeq, changeCount: payload.readUInt32LE(bytes - 4), bytes, sealedDocuments: tag === recordTag };
}

/** A parsed record and where its documents are (see EncodedRecord), or null offsets for an older format. */
export interface LocatedRecord {
  record: CommitRecord;
  /** Per change, the payload offset of its document header; null when the format has no per-document checksum. */
  documentOffsets: number[] | null;
}

/** Parses and shape-checks one record's payload; throws a reason string's Error if it is not a commit record. */
export function parseRecord(payload: Buffer): CommitRecord {
  return parseLocatedRecord(payload).record;
}

/**
 * parseRecord, plus where each document lies in the payload. The frame's checksum already covers the documents, so
 * their own checksums are checked only when `checkDocuments` asks (doctor does; replay need not pay twice).
 */
export function parseLocatedRecord(payload: Buffer, checkDocuments = false): LocatedRecord {
  const header = readRecordHeader(payload);
  const reader: Reader = { payload, at: header.bytes, sealed: header.sealedDocuments, check: checkDocuments, seq: header.seq, documentAt: -1 };
  const changes: Change[] = [];
  const documentOffsets: number[] | null = header.sealedDocuments ? [] : null;
  for (let i = 0; i < header.changeCount; i++) {
    changes.push(readChange(reader));
    documentOffsets?.push(reader.documentAt);
  }
  if (reader.at !== payload.length) throw new Error('payload has bytes after its last change');
  return { record: { seq: header.seq, ts: header.ts, changes }, documentOffsets };
}

interface Reader {
  payload: Buffer;
  at: number;
  /** Documents carry a crc after their length. */
  sealed: boolean;
  /** Check each document's crc. */
  check: boolean;
  seq: number;
  /** Where the last change read had its document header, or -1. */
  documentAt: number;
}

function readChange(reader: Reader): Change {
  reader.documentAt = -1;
  const code = readU32OrByte(reader, 1);
  if (code === idempotencyCode) return readIdempotency(reader);
  if (code === catalogCode) {
    const change = JSON.parse(readText(reader, 1, 'utf8')) as Change;
    if (typeof change !== 'object' || change === null || change.kind === 'row') throw new Error('payload holds a bad catalog change');
    return change;
  }
  const op = rowOps[code];
  if (op === undefined) throw new Error(`payload holds an unknown change code ${code}`);
  const table = readText(reader, 1, 'utf8');
  const key = readText(reader, 2, 'utf16le');
  const doc = op === 'delete' ? null : readDocument(reader);
  return { kind: 'row', table, key, op, doc };
}

function readIdempotency(reader: Reader): IdempotencyChange {
  if (reader.at + 8 > reader.payload.length) throw new Error('payload ends inside a change');
  const expiresAt = reader.payload.readDoubleLE(reader.at);
  reader.at += 8;
  if (!Number.isFinite(expiresAt)) throw new Error('payload holds an idempotency entry without a valid expiry');
  const user = readText(reader, 1, 'utf8');
  const key = readText(reader, 1, 'utf8');
  const fingerprint = readText(reader, 1, 'utf8');
  const answer = readText(reader, 1, 'utf8');
  return { kind: 'idempotency', user, key, fingerprint, answer, expiresAt };
}

function readDocument(reader: Reader): string {
  if (!reader.sealed) return readText(reader, 1, 'utf8');
  reader.documentAt = reader.at;
  const length = readU32OrByte(reader, 4);
  const crc = readU32OrByte(reader, 4);
  const start = reader.at;
  if (start + length > reader.payload.length) throw new Error('payload ends inside a change');
  reader.at += length;
  const bytes = reader.payload.subarray(start, reader.at);
  if (reader.check && documentChecksum(reader.seq, bytes) !== crc) throw new Error(`a document's crc does not match at payload offset ${reader.documentAt}`);
  return bytes.toString('utf8');
}

/** Reads a u32 (or, with `bytes` 1, a u8) at the reader, checking that it lies inside the payload. */
function readU32OrByte(reader: Reader, bytes: 1 | 4): number {
  if (reader.at + bytes > reader.payload.length) throw new Error('payload ends inside a change');
  const value = bytes === 1 ? reader.payload[reader.at]! : reader.payload.readUInt32LE(reader.at);
  reader.at += bytes;
  return value;
}

/** Reads a u32 length (in units of `unitBytes`) and the text after it. */
function readText(reader: Reader, unitBytes: 1 | 2, encoding: 'utf8' | 'utf16le'): string {
  const length = readU32OrByte(reader, 4) * unitBytes;
  const start = reader.at;
  if (start + length > reader.payload.length) throw new Error('payload ends inside a change');
  reader.at += length;
  return reader.payload.toString(encoding, start, reader.at);
}

/** The seq of a record without parsing all of it. */
export function peekRecordSeq(payload: Buffer): number {
  return readRecordHeader(payload).seq;
}

/** Recovery met damage it must not repair: the server refuses to start, naming the file and byte offset. */
export class CorruptLogError extends Error {
  readonly file: string;
  readonly offset: number;
  readonly reason: string;

  constructor(problem: { file: string; offset: number; reason: string }) {
    super(`corrupt log: ${problem.file} at byte ${problem.offset}: ${problem.reason}`);
    this.name = 'CorruptLogError';
    this.file = problem.file;
    this.offset = problem.offset;
    this.reason = problem.reason;
  }
}

export type ProblemSeverity = 'corrupt' | 'tail';

/** A finding about the log. `tail` = a torn write at the very end that recovery cuts off; `corrupt` = recovery refuses. */
export interface LogProblem {
  file: string;
  offset: number;
  reason: string;
  severity: ProblemSeverity;
}

/** Where a record was found: its segment's ordinal (position in seq order), its frame's offset, its documents. */
export interface RecordWhere {
  segment: number;
  offset: number;
  /** The frame's size, for progress reports. */
  bytes: number;
  /** Per change, the payload offset of its document header (-1 for none); null for older formats or unparsed. */
  documentOffsets: number[] | null;
}

export interface LogWalkVisitor {
  /** Called for each valid record in seq order; `record` is null for records at or below afterSeq (not parsed). */
  onRecord(record: CommitRecord | null, seq: number, where: RecordWhere): void;
  /** Called for each problem; answer 'stop' to end the walk (recovery), 'continue' to look further (doctor). */
  onProblem(problem: LogProblem): 'stop' | 'continue';
}

export interface LogWalkResult {
  segments: Array<SegmentFile & { bytes: number; validBytes: number }>;
  /** Seq of the last valid record (an empty segment named N counts as ending at N - 1), or 0 without segments. */
  lastSeq: number;
  /** Records visited. */
  records: number;
  /** Where a torn tail starts, if the last segment has one, and what it looked like. */
  tail: { file: string; offset: number; reason: string } | null;
  stopped: boolean;
}

/*
 * Recovery decision table. Segments are read in seq order; within a segment, frames from offset 0.
 *
 *   what is found                                              | verdict
 *   -----------------------------------------------------------+---------------------------------------------
 *   empty dir, or an empty segment file                        | fine (no records there)
 *   a segment wholly at or below afterSeq (the next segment    | skipped at recovery, not read: the checkpoint
 *     starts at or below afterSeq + 1)                         |   holds its records (doctor still reads it)
 *   valid frame, valid record, seq = expected                  | replay it (if seq > afterSeq)
 *   valid frame whose payload is not a commit record           | corrupt: a checksummed record we cannot read
 *   valid record with seq != expected (gap, repeat, reorder)   | corrupt
 *   first segment named above afterSeq + 1                     | corrupt: records between are missing
 *   segment named other than the seq the log expects next      | corrupt: a missing (or stray) segment
 *   bad or incomplete frame in a segment that is not the last  | corrupt: a full segment was synced before the next
 *   bad or incomplete frame in the last segment, nothing valid | torn tail: an unacknowledged write a crash cut;
 *     after it                                                 |   truncate there, fsync, warn, start
 *   bad or incomplete frame in the last segment where seq E    | torn tail as well: a power loss kept a later page
 *     belongs, the damage up to the next valid frame holds a   |   of the groups in flight but not an earlier one
 *     zeroed aligned sector (a page that never reached the     |   (new pages of an append-only file read back as
 *     disk), and every valid record after it has a seq ≥ E and |   zeros). Acknowledgement goes in seq order, so
 *     was written before E was acknowledged (ackedSeq < E)     |   nothing from E on was answered: cut at the damage
 *   the same, with no zeroed sector in the damage, or a later  | corrupt: damage to an acknowledged record, or not
 *     record written after E was acknowledged (ackedSeq ≥ E)   |   a torn write; cutting there could drop
 *     or one that is not a record of seq ≥ E                   |   acknowledged records
 *   log (non-empty) ends below afterSeq                        | corrupt: the log lost records the checkpoint has
 *
 * What the second torn-tail rule cannot tell apart: a record acknowledged after a later one was written, whose
 * sector the disk later returns as zeros. It is cut like a torn write, and the cut is logged with file, offset and
 * bytes, as every cut is.
 */
export async function walkLog(options: {
  fileSystem: FileSystem;
  dir: string;
  afterSeq: number;
  recordBytesMax: number;
  /** Parse every record, even those at or below afterSeq (doctor); else those only have their seq read. */
  parseAll?: boolean;
  visitor: LogWalkVisitor;
}): Promise<LogWalkResult> {
  const { fileSystem, visitor } = options;
  const segments = await listSegments(fileSystem, options.dir);
  const result: LogWalkResult = { segments: [], lastSeq: 0, records: 0, tail: null, stopped: false };
  let expected: number | null = null;
  const report = (problem: LogProblem): boolean => {
    result.stopped = visitor.onProblem(problem) === 'stop';
    return result.stopped;
  };
  for (let index = 0; index < segments.length && !result.stopped; index += 1) {
    const segment = segments[index]!;
    if (expected === null && segment.firstSeq > options.afterSeq + 1) {
      if (report(corrupt(segment.file, 0, `first segment starts at seq ${segment.firstSeq}; records ${options.afterSeq + 1}..${segment.firstSeq - 1} are missing`))) break;
    } else if (expected !== null && segment.firstSeq !== expected) {
      if (report(corrupt(segment.file, 0, `segment starts at seq ${segment.firstSeq} but the log expects ${expected} (missing or stray segment)`))) break;
    }
    expected = segment.firstSeq;
    const next = segments[index + 1];
    if (options.parseAll !== true && next !== undefined && next.firstSeq <= options.afterSeq + 1) {
      const bytes = await fileSystem.size(segment.file);
      expected = next.firstSeq;
      result.lastSeq = expected - 1;
      result.segments.push({ ...segment, bytes, validBytes: bytes });
      continue;
    }
    const buf = await fileSystem.readFile(segment.file);
    const walked = walkSegment({ buf, segment, ordinal: index, isLast: index === segments.length - 1, expected, ...options, report });
    expected = walked.expected;
    result.records += walked.records;
    result.lastSeq = expected - 1;
    if (walked.tailOffset !== null) result.tail = { file: segment.file, offset: walked.tailOffset, reason: walked.tailReason! };
    result.segments.push({ ...segment, bytes: buf.length, validBytes: walked.validBytes });
  }
  if (!result.stopped && result.segments.length > 0 && result.lastSeq < options.afterSeq) {
    const last = result.segments[result.segments.length - 1]!;
    report(corrupt(last.file, last.validBytes, `log ends at seq ${result.lastSeq} but the checkpoint is at seq ${options.afterSeq}`));
  }
  return result;
}

function corrupt(file: string, offset: number, reason: string): LogProblem {
  return { file, offset, reason, severity: 'corrupt' };
}

interface SegmentWalk {
  expected: number;
  records: number;
  /** End of the last valid frame before any damage. */
  validBytes: number;
  tailOffset: number | null;
  tailReason: string | null;
}

function walkSegment(options: {
  buf: Buffer;
  segment: SegmentFile;
  ordinal: number;
  isLast: boolean;
  expected: number;
  afterSeq: number;
  recordBytesMax: number;
  parseAll?: boolean;
  visitor: LogWalkVisitor;
  report(problem: LogProblem): boolean;
}): SegmentWalk {
  const { buf, segment, visitor, report } = options;
  const walk: SegmentWalk = { expected: options.expected, records: 0, validBytes: 0, tailOffset: null, tailReason: null };
  let offset = 0;
  let damaged = false;
  for (;;) {
    const read = readFrame(buf, offset, options.recordBytesMax);
    if (read.kind === 'end') return walk;
    if (read.kind === 'bad') {
      const next = findNextValidFrame(buf, offset, options.recordBytesMax);
      if (options.isLast && !damaged && (next === null || tornInFlight(buf, offset, next, walk.expected, options.recordBytesMax))) {
        const after = next === null ? '' : `, followed by records written before seq ${walk.expected} was acknowledged`;
        walk.tailOffset = offset;
        walk.tailReason = `torn tail (${read.fault}: ${read.detail}${after}); recovery cuts it`;
        report({ file: segment.file, offset, reason: walk.tailReason, severity: 'tail' });
        return walk;
      }
      const where = next === null ? (options.isLast ? 'after earlier damage' : 'in a segment that is not the last') : `followed by a valid frame at offset ${next}`;
      if (report(corrupt(segment.file, offset, `${read.fault}: ${read.detail}, ${where}`)) || next === null) return walk;
      damaged = true;
      offset = next;
      continue;
    }
    if (!visitRecord(read.payload, read.offset)) return walk;
    offset = read.end;
    if (!damaged) walk.validBytes = offset;
  }

  function visitRecord(payload: Buffer, at: number): boolean {
    let seq: number;
    let located: LocatedRecord | null = null;
    try {
      if (walk.expected > options.afterSeq || options.parseAll) {
        located = parseLocatedRecord(payload, options.parseAll === true);
        seq = located.record.seq;
      } else {
        seq = peekRecordSeq(payload);
      }
    } catch (error) {
      return !report(corrupt(segment.file, at, `valid frame, bad record: ${(error as Error).message}`));
    }
    if (seq !== walk.expected) {
      if (report(corrupt(segment.file, at, `record seq ${seq} where seq ${walk.expected} was expected`))) return false;
      walk.expected = seq;
      located = seq > options.afterSeq ? safeParse(payload) : null;
    }
    walk.expected = seq + 1;
    walk.records += 1;
    visitor.onRecord(located?.record ?? null, seq, {
      segment: options.ordinal,
      offset: at,
      bytes: frameHeaderBytes + payload.length,
      documentOffsets: located?.documentOffsets ?? null,
    });
    return true;
  }
}

/** Disks write whole sectors; a page that never reached the disk reads back as zeroed sectors. */
const sectorBytes = 512;

/**
 * Whether damage at `badOffset` (where seq `damagedSeq` belongs) followed by a valid frame at `next` is a power loss
 * tearing the groups in flight: the damage holds a zeroed aligned sector, and every valid frame after it holds a
 * record of seq ≥ `damagedSeq` written before `damagedSeq` was acknowledged.
 */
function tornInFlight(buf: Buffer, badOffset: number, next: number, damagedSeq: number, recordBytesMax: number): boolean {
  return holdsZeroedSector(buf, badOffset, next) && writtenBeforeAcknowledged(buf, next, damagedSeq, recordBytesMax);
}

function holdsZeroedSector(buf: Buffer, from: number, to: number): boolean {
  for (let start = Math.ceil(from / sectorBytes) * sectorBytes; start + sectorBytes <= to; start += sectorBytes) {
    if (buf.subarray(start, start + sectorBytes).every((byte) => byte === 0)) return true;
  }
  return false;
}

function writtenBeforeAcknowledged(buf: Buffer, offset: number, damagedSeq: number, recordBytesMax: number): boolean {
  let at: number | null = offset;
  while (at !== null) {
    const read = readFrame(buf, at, recordBytesMax);
    if (read.kind === 'end') return true;
    if (read.kind === 'bad') {
      at = findNextValidFrame(buf, at, recordBytesMax);
      continue;
    }
    let header: RecordHeader;
    try {
      header = readRecordHeader(read.payload);
    } catch {
      return false;
    }
    if (header.seq < damagedSeq || header.ackedSeq >= damagedSeq) return false;
    at = read.end;
  }
  return true;
}

function safeParse(payload: Buffer): LocatedRecord | null {
  try {
    return parseLocatedRecord(payload);
  } catch {
    return null;
  }
}

// Reading the log's segment files: naming, parsing records, and the recovery decision table shared by
// openLog (which acts on it) and doctor (which only reports), so both always reach the same verdict.

import * as path from 'node:path';
import { assert } from '../../assert.js';
import type { CommitRecord } from '../types.js';
import type { FileSystem } from '../storage/fs.js';
import { findNextValidFrame, readFrame } from './frame.js';

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

/** Parses and shape-checks one record's payload; throws a reason string's Error if it is not a commit record. */
export function parseRecord(payload: Buffer): CommitRecord {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new Error('payload is not JSON');
  }
  const record = value as CommitRecord;
  if (typeof value !== 'object' || value === null || !Number.isSafeInteger(record.seq) || record.seq < 1) {
    throw new Error('payload has no valid seq');
  }
  if (typeof record.ts !== 'number' || !Array.isArray(record.changes)) throw new Error('payload is not a commit record');
  return record;
}

const seqPrefix = Buffer.from('{"seq":');

/** The seq of a record without parsing all of it, when the payload starts with `{"seq":N,`; else a full parse. */
export function peekRecordSeq(payload: Buffer): number {
  if (payload.length > seqPrefix.length && payload.compare(seqPrefix, 0, seqPrefix.length, 0, seqPrefix.length) === 0) {
    let seq = 0;
    let offset = seqPrefix.length;
    for (; offset < payload.length && offset < seqPrefix.length + 16; offset += 1) {
      const digit = payload[offset]! - 0x30;
      if (digit < 0 || digit > 9) break;
      seq = seq * 10 + digit;
    }
    if (offset > seqPrefix.length && payload[offset] === 0x2c /* , */ && seq >= 1) return seq;
  }
  return parseRecord(payload).seq;
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

export interface LogWalkVisitor {
  /** Called for each valid record in seq order; `record` is null for records at or below afterSeq (not parsed). */
  onRecord(record: CommitRecord | null, seq: number): void;
  /** Called for each problem; answer 'stop' to end the walk (recovery), 'continue' to look further (doctor). */
  onProblem(problem: LogProblem): 'stop' | 'continue';
}

export interface LogWalkResult {
  segments: Array<SegmentFile & { bytes: number; validBytes: number }>;
  /** Seq of the last valid record (an empty segment named N counts as ending at N - 1), or 0 without segments. */
  lastSeq: number;
  /** Records visited. */
  records: number;
  /** Where a torn tail starts, if the last segment has one. */
  tail: { file: string; offset: number } | null;
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
 *   bad or incomplete frame in the last segment, and a valid   | corrupt: damage before the tail; cutting there
 *     frame starts somewhere after it in the same file         |   would silently drop acknowledged records
 *   bad or incomplete frame in the last segment, nothing valid | torn tail: an unacknowledged write a crash cut;
 *     after it                                                 |   truncate there, fsync, warn, start
 *   log (non-empty) ends below afterSeq                        | corrupt: the log lost records the checkpoint has
 *
 * Known limit: if a crash tears the last group write so that a later page of it reached the disk but an earlier
 * one did not, a valid frame follows the damage and we answer "corrupt" although nothing acknowledged was lost.
 * We accept that: it fails loud (doctor shows where), never silent.
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
    const walked = walkSegment({ buf, segment, isLast: index === segments.length - 1, expected, ...options, report });
    expected = walked.expected;
    result.records += walked.records;
    result.lastSeq = expected - 1;
    if (walked.tailOffset !== null) result.tail = { file: segment.file, offset: walked.tailOffset };
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
}

function walkSegment(options: {
  buf: Buffer;
  segment: SegmentFile;
  isLast: boolean;
  expected: number;
  afterSeq: number;
  recordBytesMax: number;
  parseAll?: boolean;
  visitor: LogWalkVisitor;
  report(problem: LogProblem): boolean;
}): SegmentWalk {
  const { buf, segment, visitor, report } = options;
  const walk: SegmentWalk = { expected: options.expected, records: 0, validBytes: 0, tailOffset: null };
  let offset = 0;
  let damaged = false;
  for (;;) {
    const read = readFrame(buf, offset, options.recordBytesMax);
    if (read.kind === 'end') return walk;
    if (read.kind === 'bad') {
      const next = findNextValidFrame(buf, offset, options.recordBytesMax);
      if (next === null && options.isLast && !damaged) {
        walk.tailOffset = offset;
        report({ file: segment.file, offset, reason: `torn tail (${read.fault}: ${read.detail}); recovery cuts it`, severity: 'tail' });
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
    let record: CommitRecord | null = null;
    try {
      if (walk.expected > options.afterSeq || options.parseAll) {
        record = parseRecord(payload);
        seq = record.seq;
      } else {
        seq = peekRecordSeq(payload);
      }
    } catch (error) {
      return !report(corrupt(segment.file, at, `valid frame, bad record: ${(error as Error).message}`));
    }
    if (seq !== walk.expected) {
      if (report(corrupt(segment.file, at, `record seq ${seq} where seq ${walk.expected} was expected`))) return false;
      walk.expected = seq;
      record = seq > options.afterSeq ? safeParse(payload) : null;
    }
    walk.expected = seq + 1;
    walk.records += 1;
    visitor.onRecord(record, seq);
    return true;
  }
}

function safeParse(payload: Buffer): CommitRecord | null {
  try {
    return parseRecord(payload);
  } catch {
    return null;
  }
}

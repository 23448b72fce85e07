// A batch of commit records as one value of a replicated log (cluster mode): the records one node proposed together
// (group commit into the shared log), each a sealed log frame, behind a small header naming the proposal and the seqs.

import { assert } from '../../assert.js';
import { limits } from '../../limits.js';
import type { CommitRecord } from '../types.js';
import { decodeFrames } from './frame.js';
import { encodeRecordFrame, parseRecord } from './segment.js';

/*
 * Layout, little-endian:  u8 batchTag | f64 firstSeq | f64 lastSeq | u16 proposal bytes | proposal UTF-8 | frames
 * Each frame is a log record frame as the segments hold it (its own length and crc32), so a damaged value is caught
 * frame by frame; the seqs in the header must match the frames'.
 */
const batchTag = 0xb1;
const batchHeaderBytes = 1 + 8 + 8 + 2;

export interface Batch {
  /** Who proposed it: a proposer recognises its own batch by this id when the log delivers it. */
  proposal: string;
  firstSeq: number;
  lastSeq: number;
  records: CommitRecord[];
}

/** The frames of consecutive records, encoded once (the proposer checks their size before it proposes them). */
export function encodeBatchFrames(records: readonly CommitRecord[]): Buffer[] {
  // The acknowledged seq inside a frame is the writing log's own; in a batch it means nothing, and 0 says so.
  return records.map((record) => encodeRecordFrame(record, 0));
}

export function encodeBatch(proposal: string, firstSeq: number, frames: readonly Buffer[]): Buffer {
  assert(frames.length > 0, 'a batch holds at least one record');
  const id = Buffer.from(proposal, 'utf8');
  assert(id.length <= 0xffff, 'proposal id too long');
  const header = Buffer.allocUnsafe(batchHeaderBytes + id.length);
  header.writeUInt8(batchTag, 0);
  header.writeDoubleLE(firstSeq, 1);
  header.writeDoubleLE(firstSeq + frames.length - 1, 9);
  header.writeUInt16LE(id.length, 17);
  id.copy(header, batchHeaderBytes);
  return Buffer.concat([header, ...frames]);
}

/** The header alone: which seqs a batch holds and who proposed it. Throws an Error naming the damage. */
export function batchHeader(value: Buffer): { proposal: string; firstSeq: number; lastSeq: number; framesAt: number } {
  if (value.length < batchHeaderBytes || value[0] !== batchTag) throw new Error('the value is not a batch of commit records');
  const firstSeq = value.readDoubleLE(1);
  const lastSeq = value.readDoubleLE(9);
  const idBytes = value.readUInt16LE(17);
  if (!Number.isSafeInteger(firstSeq) || firstSeq < 1 || !Number.isSafeInteger(lastSeq) || lastSeq < firstSeq) {
    throw new Error('the batch header names no valid seqs');
  }
  if (value.length < batchHeaderBytes + idBytes) throw new Error('the batch header is cut off');
  return { proposal: value.toString('utf8', batchHeaderBytes, batchHeaderBytes + idBytes), firstSeq, lastSeq, framesAt: batchHeaderBytes + idBytes };
}

/** Decodes and checks a whole batch: every frame's crc, every record's shape, and seqs firstSeq…lastSeq in order. */
export function decodeBatch(value: Buffer): Batch {
  const header = batchHeader(value);
  const records: CommitRecord[] = [];
  for (const item of decodeFrames(value, header.framesAt, limits.recordBytesMax)) {
    if (item.kind === 'bad') throw new Error(`batch frame at offset ${item.offset} is damaged (${item.fault})`);
    if (item.kind === 'end') break;
    const record = parseRecord(item.payload);
    if (record.seq !== header.firstSeq + records.length) throw new Error(`batch holds seq ${record.seq} where ${header.firstSeq + records.length} belongs`);
    records.push(record);
  }
  if (header.firstSeq + records.length - 1 !== header.lastSeq) throw new Error('batch holds fewer records than its header names');
  return { proposal: header.proposal, firstSeq: header.firstSeq, lastSeq: header.lastSeq, records };
}

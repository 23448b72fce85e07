// The log's segment files by ordinal (their position in seq order), and the one number that says where a stored
// document lies: its location, segment ordinal × 2^32 + byte offset. The version store keeps only locations for old
// versions, so an ordinal must name the same file for as long as the log lives: segments are only ever added.

import { assert } from '../../assert.js';
import type { FileSystem } from '../storage/fs.js';
import { listSegments } from './segment.js';

/** Offsets within a segment stay below this (segments roll at limits.segmentBytesMax, far below it). */
const segmentSpan = 2 ** 32;

/** Where a byte of the log lies, as one safe integer. */
export function locationOf(ordinal: number, offset: number): number {
  assert(Number.isSafeInteger(ordinal) && ordinal >= 0 && offset >= 0 && offset < segmentSpan, 'log location out of range');
  return ordinal * segmentSpan + offset;
}

export function ordinalOf(location: number): number {
  return Math.floor(location / segmentSpan);
}

export function offsetOf(location: number): number {
  return location % segmentSpan;
}

/** The segment files of one log directory, by ordinal; shared by the writer (which adds) and the readers. */
export class SegmentList {
  private readonly files: string[];

  constructor(files: readonly string[]) {
    this.files = [...files];
  }

  /** The segments of `dir` as they are on disk now (none if it does not exist). */
  static async open(fileSystem: FileSystem, dir: string): Promise<SegmentList> {
    return new SegmentList((await listSegments(fileSystem, dir)).map((segment) => segment.file));
  }

  get count(): number {
    return this.files.length;
  }

  /** The file of segment `ordinal`. */
  file(ordinal: number): string {
    const file = this.files[ordinal];
    assert(file !== undefined, `no log segment ${ordinal}`);
    return file;
  }

  /** Every file in ordinal order (checkpoints record them, so a load can tell the locations still hold). */
  all(): readonly string[] {
    return this.files;
  }

  /** Forgets the newest segment: only when the log cuts back a failed write (nothing acknowledged lies in it). */
  dropLast(): void {
    this.files.pop();
  }

  /** Records a new segment file; answers its ordinal. */
  add(file: string): number {
    this.files.push(file);
    return this.files.length - 1;
  }
}

// Record framing shared by log segments and checkpoint files: [u32 LE payload length][u32 LE crc32][payload],
// the CRC covering the length bytes and the payload, so any torn or flipped byte is caught on read.

import { crc32 } from 'node:zlib';
import { assert } from '../../assert.js';
import { limits } from '../../limits.js';

export const frameHeaderBytes = 8;

/** Why a frame could not be read. `incomplete_*` may be a torn write at the end of a file; the others are damage. */
export type FrameFault = 'incomplete_header' | 'incomplete_payload' | 'empty_payload' | 'length_too_large' | 'crc_mismatch';

export type FrameRead =
  /** A whole, checksummed frame at `offset`; the next frame starts at `end`. `payload` is a view into the buffer. */
  | { kind: 'frame'; offset: number; end: number; payload: Buffer }
  /** The buffer ends exactly here: no more frames. */
  | { kind: 'end'; offset: number }
  /** The bytes at `offset` are not a valid frame. */
  | { kind: 'bad'; offset: number; fault: FrameFault; detail: string };

function frameChecksum(frame: Buffer, payloadBytes: number): number {
  const lengthChecksum = crc32(frame.subarray(0, 4));
  return crc32(frame.subarray(frameHeaderBytes, frameHeaderBytes + payloadBytes), lengthChecksum);
}

/** Frames a payload. The checksum is verified again after encoding, so a bad encoder cannot write a bad frame. */
export function encodeFrame(payload: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(frameHeaderBytes + payload.length);
  payload.copy(frame, frameHeaderBytes);
  return sealFrame(frame);
}

/** Frames a one-byte tag followed by `payload`. */
export function encodeTaggedFrame(tag: number, payload: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(frameHeaderBytes + 1 + payload.length);
  frame[frameHeaderBytes] = tag;
  payload.copy(frame, frameHeaderBytes + 1);
  return sealFrame(frame);
}

/** Frames the UTF-8 bytes of `text` (plus an optional one-byte tag before them) without an intermediate copy. */
export function encodeTextFrame(text: string, tag?: number): Buffer {
  const tagBytes = tag === undefined ? 0 : 1;
  const textBytes = Buffer.byteLength(text, 'utf8');
  const frame = Buffer.allocUnsafe(frameHeaderBytes + tagBytes + textBytes);
  if (tag !== undefined) frame[frameHeaderBytes] = tag;
  const written = frame.write(text, frameHeaderBytes + tagBytes, 'utf8');
  assert(written === textBytes, 'utf8 length mismatch');
  return sealFrame(frame);
}

/** Fills in the length and checksum of a frame whose payload is already in place, and verifies it. */
export function sealFrame(frame: Buffer): Buffer {
  const payloadBytes = frame.length - frameHeaderBytes;
  assert(payloadBytes > 0, 'a frame payload may not be empty');
  assert(payloadBytes <= 0xffff_ffff, 'frame payload too large for a u32 length');
  frame.writeUInt32LE(payloadBytes, 0);
  frame.writeUInt32LE(frameChecksum(frame, payloadBytes), 4);
  const check = readFrame(frame, 0, payloadBytes);
  assert(check.kind === 'frame' && check.end === frame.length, 'frame failed verification after encoding');
  return frame;
}

/** Reads the frame at `offset`, verifying its checksum. A length over `payloadBytesMax` is damage, not a frame. */
export function readFrame(buf: Buffer, offset: number, payloadBytesMax: number): FrameRead {
  assert(offset >= 0 && offset <= buf.length, 'frame offset outside the buffer');
  const available = buf.length - offset;
  if (available === 0) return { kind: 'end', offset };
  if (available < frameHeaderBytes) {
    return { kind: 'bad', offset, fault: 'incomplete_header', detail: `${available} bytes left, a frame header needs ${frameHeaderBytes}` };
  }
  const payloadBytes = buf.readUInt32LE(offset);
  if (payloadBytes === 0) return { kind: 'bad', offset, fault: 'empty_payload', detail: 'frame length 0' };
  if (payloadBytes > payloadBytesMax) {
    return { kind: 'bad', offset, fault: 'length_too_large', detail: `frame length ${payloadBytes} exceeds ${payloadBytesMax}` };
  }
  const end = offset + frameHeaderBytes + payloadBytes;
  if (end > buf.length) {
    return { kind: 'bad', offset, fault: 'incomplete_payload', detail: `frame length ${payloadBytes} runs ${end - buf.length} bytes past the end` };
  }
  const frame = buf.subarray(offset, end);
  const expected = buf.readUInt32LE(offset + 4);
  const actual = frameChecksum(frame, payloadBytes);
  if (expected !== actual) {
    return { kind: 'bad', offset, fault: 'crc_mismatch', detail: `crc32 ${hex(actual)} does not match the stored ${hex(expected)}` };
  }
  return { kind: 'frame', offset, end, payload: buf.subarray(offset + frameHeaderBytes, end) };
}

function hex(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}

/**
 * Yields every valid frame from `startOffset` on, then exactly one terminal item: `end` when the buffer ends on a
 * frame boundary, or `bad` describing the first frame that is incomplete or damaged.
 */
export function* decodeFrames(buf: Buffer, startOffset = 0, payloadBytesMax: number = limits.recordBytesMax): Generator<FrameRead, void, void> {
  let offset = startOffset;
  for (;;) {
    const read = readFrame(buf, offset, payloadBytesMax);
    yield read;
    if (read.kind !== 'frame') return;
    offset = read.end;
  }
}

/**
 * The offset of the first valid frame that starts after `afterOffset`, or null. Used to tell a torn tail (nothing
 * valid follows the damage) from corruption in the middle (a valid frame follows it). Bounded by the buffer.
 */
export function findNextValidFrame(buf: Buffer, afterOffset: number, payloadBytesMax: number): number | null {
  const lastStart = buf.length - frameHeaderBytes - 1;
  for (let offset = afterOffset + 1; offset <= lastStart; offset += 1) {
    // Cheap length test before the checksum: most garbage claims a length that cannot fit.
    const payloadBytes = buf.readUInt32LE(offset);
    if (payloadBytes === 0 || payloadBytes > payloadBytesMax || offset + frameHeaderBytes + payloadBytes > buf.length) continue;
    if (readFrame(buf, offset, payloadBytesMax).kind === 'frame') return offset;
  }
  return null;
}

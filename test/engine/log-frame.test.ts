// Record framing: round trips, and every damaged or truncated frame is reported, never decoded.

import t from 'tap';
import fc from 'fast-check';
import { decodeFrames, encodeFrame, encodeTextFrame, findNextValidFrame, frameHeaderBytes, readFrame, type FrameRead } from '../../src/engine/log/frame.js';
import { AssertionError } from '../../src/assert.js';

const payloadMax = 1 << 20;
const payloads = fc.uint8Array({ minLength: 1, maxLength: 300 }).map((bytes) => Buffer.from(bytes));

function decodeAll(buf: Buffer): FrameRead[] {
  return [...decodeFrames(buf, 0, payloadMax)];
}

t.test('frames round-trip their payloads in order and end cleanly', async (t) => {
  fc.assert(
    fc.property(fc.array(payloads, { minLength: 0, maxLength: 20 }), (list) => {
      const reads = decodeAll(Buffer.concat(list.map(encodeFrame)));
      if (reads.length !== list.length + 1) throw new Error(`${reads.length} reads for ${list.length} frames`);
      list.forEach((payload, index) => {
        const read = reads[index]!;
        if (read.kind !== 'frame') throw new Error(`frame ${index} not decoded: ${JSON.stringify(read)}`);
        if (!read.payload.equals(payload)) throw new Error(`payload ${index} differs`);
      });
      if (reads.at(-1)!.kind !== 'end') throw new Error('no clean end');
    }),
  );
  t.pass('every list round-tripped');
});

t.test('the header holds the payload length and a crc32 over length and payload', async (t) => {
  const frame = encodeFrame(Buffer.from('hello'));
  t.equal(frame.length, frameHeaderBytes + 5);
  t.equal(frame.readUInt32LE(0), 5);
  const { crc32 } = await import('node:zlib');
  t.equal(frame.readUInt32LE(4), crc32(Buffer.concat([frame.subarray(0, 4), Buffer.from('hello')])));
});

t.test('text frames equal byte frames, with an optional tag byte first', async (t) => {
  t.same(encodeTextFrame('héllo ✓'), encodeFrame(Buffer.from('héllo ✓')));
  t.same(encodeTextFrame('x', 7), encodeFrame(Buffer.from([7, 0x78])));
});

t.test('a flipped bit anywhere in a frame is detected at that frame', async (t) => {
  fc.assert(
    fc.property(payloads, payloads, fc.nat(), fc.integer({ min: 0, max: 7 }), (first, second, at, bit) => {
      const one = encodeFrame(first);
      const buf = Buffer.concat([one, encodeFrame(second)]);
      const index = one.length + (at % (buf.length - one.length));
      buf[index]! ^= 1 << bit;
      const reads = decodeAll(buf);
      if (reads[0]!.kind !== 'frame') throw new Error('first frame should still decode');
      const damaged = reads[1]!;
      if (damaged.kind !== 'bad' || damaged.offset !== one.length) throw new Error(`not detected: ${JSON.stringify(damaged)}`);
    }),
  );
  t.pass('every flip detected');
});

t.test('a frame cut at any byte is reported as incomplete at its start', async (t) => {
  const frame = encodeFrame(Buffer.from('{"seq":1,"ts":1,"changes":[]}'));
  for (let cut = 1; cut < frame.length; cut += 1) {
    const read = readFrame(frame.subarray(0, cut), 0, payloadMax);
    t.equal(read.kind, 'bad', `cut at ${cut}`);
    if (read.kind === 'bad') t.match(read.fault, /^incomplete_/);
  }
});

t.test('a zero length or a length over the bound is damage', async (t) => {
  const zero = Buffer.alloc(16);
  t.match(readFrame(zero, 0, payloadMax), { kind: 'bad', fault: 'empty_payload' });
  const huge = encodeFrame(Buffer.alloc(100, 1));
  t.match(readFrame(huge, 0, 99), { kind: 'bad', fault: 'length_too_large' });
});

t.test('an empty payload cannot be encoded', async (t) => {
  t.throws(() => encodeFrame(Buffer.alloc(0)), AssertionError);
});

t.test('findNextValidFrame finds the next intact frame after damage, or none', async (t) => {
  const a = encodeFrame(Buffer.from('aaaa'));
  const b = encodeFrame(Buffer.from('bbbbbb'));
  const buf = Buffer.concat([a, b]);
  buf[frameHeaderBytes + 1] ^= 0xff;
  t.equal(findNextValidFrame(buf, 0, payloadMax), a.length);
  t.equal(findNextValidFrame(buf, a.length, payloadMax), null);
  t.equal(findNextValidFrame(Buffer.alloc(4096), 0, payloadMax), null, 'zeros hold no frame');
});

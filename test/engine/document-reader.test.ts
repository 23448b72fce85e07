// DocumentReader.readMany, the read of many old documents at once (a key's history): documents that lie close
// together in a segment come in with one read, yet every text must be what read() answers for it, each checked
// against its own crc, and a rotted one must fail loudly with its file and offset, whatever run it was read in.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { DocumentReader, type DocumentRef } from '../../src/engine/log/document-reader.js';
import { encodeRecord, segmentName } from '../../src/engine/log/segment.js';
import { locationOf, ordinalOf, SegmentList } from '../../src/engine/log/segment-list.js';
import { nodeFileSystem } from '../../src/engine/storage/fs.js';
import type { CommitRecord } from '../../src/engine/types.js';

interface Written {
  ref: DocumentRef;
  text: string;
  /** Offset of the document's header in its segment. */
  offset: number;
}

/** Writes one segment per list of records, each record's rows given by their document sizes; answers every document. */
function writeSegments(dir: string, segments: number[][][]): { list: SegmentList; documents: Written[] } {
  const files: string[] = [];
  const documents: Written[] = [];
  let seq = 1;
  segments.forEach((records, ordinal) => {
    const file = join(dir, segmentName(seq));
    const frames: Buffer[] = [];
    let at = 0;
    for (const sizes of records) {
      const changes = sizes.map((size, i) => ({
        kind: 'row' as const,
        table: 't',
        key: `k${i}`,
        op: 'put' as const,
        // Two-byte characters too: lengths in characters and in bytes differ.
        doc: JSON.stringify({ id: `k${i}`, seq, pad: 'xé'.repeat(size) }),
      }));
      const record: CommitRecord = { seq, ts: 1_700_000_000_000 + seq, changes };
      const { frame, documentOffsets } = encodeRecord(record, seq - 1);
      documentOffsets.forEach((offset, i) => {
        const change = changes[i]!;
        documents.push({
          ref: { location: locationOf(ordinal, at + offset), seq, framed: false, table: 't', key: change.key },
          text: change.doc,
          offset: at + offset,
        });
      });
      frames.push(frame);
      at += frame.length;
      seq++;
    }
    writeFileSync(file, Buffer.concat(frames));
    files.push(file);
  });
  return { list: new SegmentList(files), documents };
}

const layout = fc.array(
  // Records of one or a few rows, small documents mostly, some past the first read (2 KiB) and past a run's gap (16 KiB).
  fc.array(fc.array(fc.oneof({ weight: 8, arbitrary: fc.nat(300) }, { weight: 1, arbitrary: fc.integer({ min: 1000, max: 12_000 }) }), { minLength: 1, maxLength: 4 }), {
    minLength: 1,
    maxLength: 30,
  }),
  { minLength: 1, maxLength: 3 },
);

t.test('readMany answers what read() answers for each document, in the order asked, up to its budget', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      layout,
      fc.array(fc.nat(), { minLength: 1, maxLength: 60 }),
      fc.boolean(),
      fc.option(fc.nat(40_000), { nil: undefined }),
      fc.constantFrom(64, 100_000),
      async (segments, picks, ascending, charsMax, cacheCharsMax) => {
        const dir = mkdtempSync(join(tmpdir(), 'driftdb-reader-'));
        try {
          const { list, documents } = writeSegments(dir, segments);
          let wanted = picks.map((p) => documents[p % documents.length]!);
          // One key's versions are asked for in log order; any order must work as well.
          if (ascending) wanted = [...new Set(wanted)].sort((a, b) => a.ref.location - b.ref.location);
          const reader = new DocumentReader({ fileSystem: nodeFileSystem, segments: list, cacheCharsMax });
          const texts = reader.readMany(
            wanted.map((w) => w.ref),
            charsMax,
          );
          if (texts.length < 1) throw new Error('readMany read nothing');
          texts.forEach((text, i) => {
            if (text !== wanted[i]!.text) throw new Error(`text ${i} differs`);
          });
          const chars = texts.reduce((sum, text) => sum + text.length, 0);
          if (texts.length < wanted.length && !(charsMax !== undefined && chars > charsMax)) throw new Error(`stopped at ${texts.length} of ${wanted.length} within the budget`);
          // And again, now partly from the cache.
          const again = reader.readMany(wanted.map((w) => w.ref));
          if (again.length !== wanted.length || again.some((text, i) => text !== wanted[i]!.text)) throw new Error('the second read differs');
          reader.close();
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    ),
    { numRuns: 60 },
  );
  t.pass('every text read in runs matched');
});

t.test('a rotted document fails readMany loudly, names file and offset, whatever run it is read in', async (t) => {
  await fc.assert(
    fc.asyncProperty(layout, fc.nat(), fc.nat(), async (segments, pick, byte) => {
      const dir = mkdtempSync(join(tmpdir(), 'driftdb-reader-'));
      try {
        const { list, documents } = writeSegments(dir, segments);
        const rotten = documents[pick % documents.length]!;
        const file = list.file(ordinalOf(rotten.ref.location));
        const bytes = readFileSync(file);
        // A byte of the document's header or text flips.
        const at = rotten.offset + (byte % (8 + Buffer.byteLength(rotten.text)));
        bytes[at] = bytes[at]! ^ 0x01;
        writeFileSync(file, bytes);
        const errors: Array<Record<string, unknown>> = [];
        const logger = { info() {}, warn() {}, error: (fields: object) => errors.push(fields as Record<string, unknown>) };
        const reader = new DocumentReader({ fileSystem: nodeFileSystem, segments: list, cacheCharsMax: 64, logger });
        const all = documents.map((d) => d.ref);
        let thrown: unknown = null;
        try {
          reader.readMany(all);
        } catch (error) {
          thrown = error;
        }
        if ((thrown as { code?: string } | null)?.code !== 'internal') throw new Error(`no internal error: ${String(thrown)}`);
        const logged = errors[0]!;
        if (logged['file'] !== file || logged['offset'] !== rotten.offset || logged['seq'] !== rotten.ref.seq) throw new Error(`logged ${JSON.stringify(logged)}`);
        // Every other document still reads, in runs around the rotten one.
        const others = documents.filter((d) => d !== rotten);
        if (others.length > 0) {
          const texts = reader.readMany(others.map((d) => d.ref));
          if (texts.some((text, i) => text !== others[i]!.text)) throw new Error('another document differs');
        }
        reader.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }),
    { numRuns: 40 },
  );
  t.pass('every rotted document failed loudly, and only it');
});

// Checkpoint files: round trip, atomic replacement, keep-2 retention, and fallback to an older file when the
// newest is half-written or damaged: whatever was delivered from the bad one is discarded before the older loads.

import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkpointName, listCheckpoints, loadCheckpoint, verifyCheckpointFile, writeCheckpoint } from '../../src/engine/log/checkpoint.js';
import { nodeFileSystem } from '../../src/engine/storage/fs.js';
import { faultyFileSystem } from '../helpers/faulty-fs.js';
import { memoryFileSystem } from '../helpers/memory-fs.js';
import { AssertionError } from '../../src/assert.js';

function chunksFor(seq: number, count: number): string[] {
  return Array.from({ length: count }, (_, index) => JSON.stringify({ seq, index, text: `row ${index} ✓ ${'z'.repeat(index % 50)}` }));
}

async function load(dir: string, fileSystem = nodeFileSystem): Promise<{ seq: number | null; chunks: string[]; warnings: object[]; discards: number }> {
  const chunks: string[] = [];
  const warnings: object[] = [];
  let discards = 0;
  const loaded = await loadCheckpoint({
    dir,
    onChunk: (c) => chunks.push(c.toString('utf8')),
    onDiscard: () => {
      discards++;
      chunks.length = 0;
    },
    fileSystem,
    logger: { info() {}, warn: (o) => warnings.push(o), error() {} },
  });
  return { seq: loaded?.seq ?? null, chunks, warnings, discards };
}

t.test('a checkpoint round-trips its chunks in order', async (t) => {
  const dir = path.join(t.testdir(), 'checkpoints');
  const chunks = [...chunksFor(42, 100), '', '{"unicode":"日本語 🎉"}'];
  const written = await writeCheckpoint({ dir, seq: 42, chunks });
  t.equal(written.file, path.join(dir, checkpointName(42)));
  t.equal(written.bytes, fs.statSync(written.file).size);
  t.same(fs.readdirSync(dir), [checkpointName(42)], 'no temp file left');
  const loaded = await load(dir);
  t.equal(loaded.seq, 42);
  t.same(loaded.chunks, chunks);
  t.same(loaded.warnings, []);
});

t.test('chunks are taken from a lazy iterable, and large files stream across read blocks', async (t) => {
  const dir = t.testdir();
  const big = 'b'.repeat(5 * 1024 * 1024);
  function* generate(): Generator<string> {
    for (let index = 0; index < 3000; index += 1) yield `${index}:${'m'.repeat(3000)}`;
    yield big;
    yield 'last';
  }
  await writeCheckpoint({ dir, seq: 7, chunks: generate() });
  const loaded = await load(dir);
  t.equal(loaded.chunks.length, 3002);
  t.equal(loaded.chunks[2999], `2999:${'m'.repeat(3000)}`);
  t.equal(loaded.chunks[3000], big);
  t.equal(loaded.chunks[3001], 'last');
});

t.test('an empty state checkpoints and loads as zero chunks; seq 0 is allowed', async (t) => {
  const dir = t.testdir();
  await writeCheckpoint({ dir, seq: 0, chunks: [] });
  t.same(await load(dir), { seq: 0, chunks: [], warnings: [], discards: 0 });
});

t.test('only the newest two checkpoints are kept', async (t) => {
  const dir = t.testdir();
  for (const seq of [10, 20, 30, 40]) await writeCheckpoint({ dir, seq, chunks: chunksFor(seq, 3) });
  t.same(fs.readdirSync(dir).sort(), [checkpointName(30), checkpointName(40)]);
  t.same((await listCheckpoints(nodeFileSystem, dir)).map((c) => c.seq), [40, 30]);
  const loaded = await load(dir);
  t.equal(loaded.seq, 40);
  t.same(loaded.chunks, chunksFor(40, 3));
});

t.test('a newest checkpoint cut at any offset falls back to the older one, delivering none of its chunks', async (t) => {
  const base = t.testdir();
  const source = path.join(base, 'source');
  await writeCheckpoint({ dir: source, seq: 10, chunks: chunksFor(10, 2) });
  await writeCheckpoint({ dir: source, seq: 20, chunks: chunksFor(20, 4) });
  const older = fs.readFileSync(path.join(source, checkpointName(10)));
  const newest = fs.readFileSync(path.join(source, checkpointName(20)));
  const dir = path.join(base, 'cut');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, checkpointName(10)), older);
  for (let cut = 0; cut < newest.length; cut += 1) {
    fs.writeFileSync(path.join(dir, checkpointName(20)), newest.subarray(0, cut));
    const loaded = await load(dir);
    if (loaded.seq !== 10 || JSON.stringify(loaded.chunks) !== JSON.stringify(chunksFor(10, 2)) || loaded.warnings.length !== 1) {
      t.fail(`cut at ${cut}: loaded ${JSON.stringify(loaded)}`);
      return;
    }
  }
  t.pass(`all ${newest.length} cuts fell back`);
});

t.test('a flipped byte in the newest checkpoint falls back; none valid loads null', async (t) => {
  const dir = t.testdir();
  await writeCheckpoint({ dir, seq: 10, chunks: chunksFor(10, 2) });
  await writeCheckpoint({ dir, seq: 20, chunks: chunksFor(20, 2) });
  const newest = path.join(dir, checkpointName(20));
  const bytes = fs.readFileSync(newest);
  bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
  fs.writeFileSync(newest, bytes);
  const verdict = await verifyCheckpointFile({ file: newest });
  t.match(verdict, { valid: false, file: newest, reason: /crc_mismatch/ });
  const fellBack = await load(dir);
  t.equal(fellBack.seq, 10);
  t.equal(fellBack.discards, 1, 'what the damaged file delivered before its bad frame was discarded');
  t.same(fellBack.chunks, chunksFor(10, 2));

  const olderFile = path.join(dir, checkpointName(10));
  fs.truncateSync(olderFile, fs.statSync(olderFile).size - 1);
  const none = await load(dir);
  t.same({ seq: none.seq, chunks: none.chunks, warnings: none.warnings.length }, { seq: null, chunks: [], warnings: 2 });
});

t.test('no dir or no checkpoint loads null', async (t) => {
  const base = t.testdir();
  t.equal((await load(path.join(base, 'missing'))).seq, null);
  fs.writeFileSync(path.join(base, 'unrelated.txt'), 'x');
  t.equal((await load(base)).seq, null);
});

t.test('a checkpoint renamed to another seq is invalid', async (t) => {
  const dir = t.testdir();
  await writeCheckpoint({ dir, seq: 10, chunks: ['a'] });
  fs.renameSync(path.join(dir, checkpointName(10)), path.join(dir, checkpointName(11)));
  t.match(await verifyCheckpointFile({ file: path.join(dir, checkpointName(11)) }), { valid: false, offset: 0, reason: /does not match the file name/ });
});

t.test('a temp file left by a crash is ignored and removed by the next write', async (t) => {
  const dir = t.testdir();
  await writeCheckpoint({ dir, seq: 10, chunks: ['a'] });
  fs.writeFileSync(path.join(dir, `${checkpointName(20)}.tmp`), 'half');
  t.equal((await load(dir)).seq, 10);
  await writeCheckpoint({ dir, seq: 30, chunks: ['c'] });
  t.same(fs.readdirSync(dir).sort(), [checkpointName(10), checkpointName(30)]);
});

t.test('a failed write or sync leaves the previous checkpoints untouched and answers unavailable', async (t) => {
  const fileSystem = faultyFileSystem(memoryFileSystem());
  await writeCheckpoint({ dir: '/data/checkpoints', seq: 10, chunks: ['a'], fileSystem });
  for (const faults of [{ failWriteAfter: fileSystem.counts.writes }, { failSyncAfter: fileSystem.counts.datasyncs + fileSystem.counts.syncs }]) {
    fileSystem.setFaults(faults);
    await t.rejects(writeCheckpoint({ dir: '/data/checkpoints', seq: 20, chunks: ['b'], fileSystem }), { name: 'DriftError', code: 'unavailable' });
    fileSystem.setFaults({});
    t.same(await fileSystem.readdir('/data/checkpoints'), [checkpointName(10)], 'no temp or partial file left');
    t.equal((await load('/data/checkpoints', fileSystem)).seq, 10);
  }
});

t.test('a checkpoint survives a crash right after writeCheckpoint resolves', async (t) => {
  const fileSystem = memoryFileSystem();
  await writeCheckpoint({ dir: '/data/checkpoints', seq: 5, chunks: chunksFor(5, 10), fileSystem });
  const crashed = fileSystem.crash();
  const loaded = await load('/data/checkpoints', crashed);
  t.equal(loaded.seq, 5);
  t.same(loaded.chunks, chunksFor(5, 10));
});

t.test('a chunk over checkpointChunkBytesMax is a programmer error', async (t) => {
  const fileSystem = memoryFileSystem();
  const huge = 'h'.repeat(64 * 1024 * 1024 + 1);
  await t.rejects(writeCheckpoint({ dir: '/c', seq: 1, chunks: [huge], fileSystem }), AssertionError);
  t.same(await fileSystem.readdir('/c'), []);
});

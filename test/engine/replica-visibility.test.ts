// Cluster mode answers a commit once the shared log holds it and this node has applied it (http-api.md §10), not once
// this node's own log is synced too: readers see it at once, while the change feed and what peers may stream from
// this node (durableSeq) follow the local log. Shown with the local log's fdatasyncs held back by hand.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { openDatabase, type ProposalOutcome, type ReplicaSink, type ReplicatedLog } from '../../src/engine/index.js';
import { nodeFileSystem, type FileSystem } from '../../src/engine/storage/fs.js';
import { withDatasync } from '../helpers/datasync-fs.js';

/** The real file system, with every fdatasync waiting from hold() until release(). */
function heldSyncFileSystem(): FileSystem & { hold(): void; release(): void } {
  let gate: { promise: Promise<void>; open(): void } | null = null;
  const fileSystem = withDatasync(nodeFileSystem, async (sync) => {
    if (gate !== null) await gate.promise;
    await sync();
  });
  return {
    ...fileSystem,
    hold() {
      let open!: () => void;
      const promise = new Promise<void>((resolve) => (open = resolve));
      gate = { promise, open };
    },
    release() {
      gate?.open();
      gate = null;
    },
  };
}

/** A shared log of one node, in memory: a proposal lands if the head is the one it was decided against. */
function oneNodeLog(): ReplicatedLog {
  let head = 0;
  let sink: ReplicaSink | null = null;
  return {
    start: async (given) => {
      sink = given;
    },
    propose: async (batch): Promise<ProposalOutcome> => {
      if (batch.head !== head) return 'lost';
      head = batch.lastSeq;
      void Promise.resolve().then(() => sink!.deliver(batch.value));
      return 'appended';
    },
    refusal: () => null,
    close: async () => {},
  };
}

function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

t.test('a commit is answered and readable once in the shared log, before this node has synced its own log', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'driftdb-replica-visibility-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const fileSystem = heldSyncFileSystem();
  const db = await openDatabase({ dataDir: dir, fileSystem, replicatedLog: oneNodeLog() });
  t.teardown(() => db.close());
  await db.createTable({ name: 'items', primaryKey: 'id' });
  const before = (await db.put({ table: 'items', key: 'a', doc: { v: 1 } })).seq!;
  while (db.durableSeq < before) await turn();

  fileSystem.hold();
  const seq = (await db.put({ table: 'items', key: 'a', doc: { v: 2 } })).seq!;
  t.equal(seq, before + 1);
  t.same(db.get({ table: 'items', key: 'a' }).doc, { id: 'a', v: 2 }, 'the write is read back at once');
  t.equal(db.durableSeq, before, 'while the local log has not synced it');
  const early = db.changes({ since: before, limit: 10, tables: null });
  t.same(early, { commits: [], nextSince: before }, 'the feed does not carry it yet, and a page from its seq is no error');
  t.doesNotThrow(() => db.changes({ since: seq, limit: 10, tables: null }), 'since = the answered seq is accepted');

  fileSystem.release();
  while (db.durableSeq < seq) await turn();
  const later = db.changes({ since: before, limit: 10, tables: null });
  t.same(
    later.commits.map((commit) => commit.seq),
    [seq],
    'once synced locally, the feed carries it',
  );
});

// The change feed's ring of recent commits: pages read across its bound (older commits from the log, newer ones
// from the ring) show every commit once, in seq order, with its document, however many commits passed through it.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { openDatabase, type Database } from '../../src/engine/index.js';
import { limits } from '../../src/limits.js';

/** A database in a temp dir with an `items` table, closed and removed when `t` ends. */
async function openWithItems(t: Test): Promise<Database> {
  const dir = mkdtempSync(join(tmpdir(), 'driftdb-feed-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const db = await openDatabase({ dataDir: dir });
  t.teardown(() => db.close());
  await db.createTable({ name: 'items', primaryKey: 'id' });
  return db;
}

t.test('pages of the change feed show every commit once, in order, across the ring and the log', async (t) => {
  const db = await openWithItems(t);
  // The ring keeps commits while someone follows the feed.
  t.teardown(db.subscribeChanges(() => {}));
  // Past the ring's bound more than twice, so it drops and compacts several times; written in waves that share
  // group commits, as a busy server's are.
  const writes = limits.feedRecentCommitsMax * 2 + 300;
  const wave = 100;
  for (let i = 0; i < writes; i += wave) {
    await Promise.all(Array.from({ length: Math.min(wave, writes - i) }, (_, j) => db.put({ table: 'items', key: `k${i + j}`, doc: { n: i + j } })));
  }
  const seen: Array<{ seq: number; key: string; n: number }> = [];
  let since = 0;
  for (;;) {
    const page = db.changes({ since, limit: 500, tables: new Set(['items']) });
    for (const commit of page.commits) {
      for (const change of commit.changes) seen.push({ seq: commit.seq, key: change.key, n: (JSON.parse(change.json!) as { n: number }).n });
    }
    if (page.nextSince === since) break;
    since = page.nextSince;
  }
  t.equal(seen.length, writes, 'every write is in the feed once');
  t.ok(
    seen.every((entry, i) => i === 0 || entry.seq > seen[i - 1]!.seq),
    'in seq order',
  );
  t.ok(
    seen.every((entry) => entry.key === `k${entry.n}`),
    'each with its own document',
  );
  // The newest commits come from the ring, the oldest from the log: both ends read the same way.
  const newest = db.changes({ since: since - 1, limit: 1, tables: null });
  t.equal(newest.commits[0]?.seq, since, 'the newest commit reads back from the ring');
});

t.test('the ring keeps commits only while someone subscribes; pages read the log otherwise, the same', async (t) => {
  const db = await openWithItems(t);
  const page = (since: number) => db.changes({ since, limit: 10, tables: new Set(['items']) });
  const text = (since: number) => JSON.stringify(page(since));

  const first = (await db.put({ table: 'items', key: 'a', doc: { n: 1 } })).seq!;
  // From the log, each read makes its own objects; from the ring, readers share one view of a commit.
  t.not(page(first - 1).commits[0], page(first - 1).commits[0], 'no subscriber: the commit is read from the log');
  const unsubscribe = db.subscribeChanges(() => {});
  const second = (await db.put({ table: 'items', key: 'b', doc: { n: 2 } })).seq!;
  t.equal(page(second - 1).commits[0], page(second - 1).commits[0], 'with a subscriber: the commit is kept in the ring');
  t.same(
    page(first - 1).commits.map((commit) => [commit.seq, commit.changes[0]!.key]),
    [
      [first, 'a'],
      [second, 'b'],
    ],
    'a page spans the log and the ring',
  );
  unsubscribe();
  const third = (await db.put({ table: 'items', key: 'c', doc: { n: 3 } })).seq!;
  t.not(page(second - 1).commits[0], page(second - 1).commits[0], 'the last subscriber gone: the ring is let go');
  t.equal(text(first - 1), text(first - 1), 'pages read the same twice');
  t.same(
    page(first - 1).commits.map((commit) => commit.seq),
    [first, second, third],
    'every commit once, in order',
  );
  const unsubscribeAgain = db.subscribeChanges(() => {});
  t.teardown(unsubscribeAgain);
  const fourth = (await db.put({ table: 'items', key: 'd', doc: { n: 4 } })).seq!;
  t.same(
    page(first - 1).commits.map((commit) => commit.seq),
    [first, second, third, fourth],
    'a ring started again after a gap holds only what came since',
  );
});

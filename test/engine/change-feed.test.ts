// The change feed's ring of recent commits: pages read across its bound (older commits from the log, newer ones
// from the ring) show every commit once, in seq order, with its document, however many commits passed through it.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { openDatabase } from '../../src/engine/index.js';
import { limits } from '../../src/limits.js';

t.test('pages of the change feed show every commit once, in order, across the ring and the log', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'driftdb-feed-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const db = await openDatabase({ dataDir: dir });
  t.teardown(() => db.close());
  await db.createTable({ name: 'items', primaryKey: 'id' });
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

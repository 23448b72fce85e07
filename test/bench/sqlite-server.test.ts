// The benchmark's SQLite peer answers DriftDB's own bench requests as DriftDB does (peer-answers.ts), keeps its
// promised durability settings, and answers the query from its index. better-sqlite3 is an optional dependency: the
// test is skipped, saying why, only where it is not installed.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { workerScripts } from '../../bench/context.js';
import { basicAuth, httpCall, makeAgent } from '../../bench/http.js';
import { startService, stopChild } from '../../bench/procs.js';
import { loadSqlite } from '../../bench/sqlite-module.js';
import type { SqliteReady } from '../../bench/sqlite-server.js';
import { checkPeerAnswers } from './peer-answers.js';

const loaded = loadSqlite();
const skip = 'missing' in loaded ? loaded.missing : false;

t.test('the SQLite peer answers the bench requests the way DriftDB does', { skip }, async (t) => {
  const rows = 1000;
  const dir = mkdtempSync(join(tmpdir(), 'driftdb-sqlite-peer-test-'));
  const authorization = basicAuth('admin', 'sqlite-test-password');
  const { child, ready } = await startService<SqliteReady>(workerScripts.sqlite, 60_000, [String(rows), authorization, dir]);
  t.teardown(async () => {
    await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
  });
  t.same([ready.journalMode, ready.synchronous], ['wal', 2], 'WAL with synchronous=FULL');
  t.ok(ready.queryPlan.some((step) => /USING INDEX bench_rows_group/.test(step)), `the query searches the group index: ${ready.queryPlan.join('; ')}`);
  await checkPeerAnswers(t, `https://127.0.0.1:${ready.port}`, authorization, rows);

  const agent = makeAgent(20);
  t.teardown(() => agent.destroy());
  const headers = { authorization };
  const baseUrl = `https://127.0.0.1:${ready.port}`;
  const unknown = await httpCall({ agent, baseUrl, method: 'GET', path: '/v1/tables/nope/rows/row-1', headers });
  t.match([unknown.status, unknown.body], [404, { code: 'table_not_found' }], 'an unknown table is 404 table_not_found');
  const missing = await httpCall({ agent, baseUrl, method: 'GET', path: '/v1/tables/bench_rows/rows/nope', headers });
  t.match([missing.status, missing.body], [404, { code: 'row_not_found' }], 'an unknown key is 404 row_not_found');
  const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => httpCall({ agent, baseUrl, method: 'PUT', path: `/v1/tables/bench_put/rows/burst-${i}`, headers, body: { i } })));
  const seqs = burst.map((answer) => (answer.body as { seq: number }).seq).sort((a, b) => a - b);
  t.same(burst.map((answer) => answer.status), Array(20).fill(201), 'concurrent writes are all created');
  t.equal(new Set(seqs).size, 20, 'each at its own seq, though they may share a commit');
});

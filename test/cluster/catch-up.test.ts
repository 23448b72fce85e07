// Cluster mode's reads and catch-up (http-api.md §10), with real processes: a write answered by one node is read with
// minSeq on the others (in a query string and in a query body), a minSeq a node cannot reach in time answers 503 with
// Retry-After, and a node SIGKILLed while the others commit on catches up when restarted, here past records etcd no
// longer holds (trimmed behind the live nodes with --cluster-trim-keep-records), so they come from a peer's log.

import fs from 'node:fs';
import path from 'node:path';
import { Etcd3 } from 'etcd3';
import t from 'tap';
import { appendBulkCommits } from '../../scripts/cluster-harness.js';
import { call, feedOf, sleep, startCluster, type ClusterHarness } from '../helpers/cluster.js';

/** Records etcd keeps behind the slowest live node: few, so that a short outage outruns them. */
const keepRecords = 20;

t.test('minSeq reads your writes on any node; a node down past the trimmed etcd log catches up from a peer', async (t) => {
  const cluster: ClusterHarness = await startCluster(['--cluster-trim-keep-records', String(keepRecords), '--min-seq-wait-ms', '1000']);
  t.teardown(() => cluster.down());
  const [n1, n2, n3] = cluster.nodes.map((node) => node.url) as [string, string, string];
  const etcd = new Etcd3({ hosts: cluster.endpoints.split(',') });
  t.teardown(() => etcd.close());

  const created = await call(n1, 'POST', '/v1/tables', { name: 'items', primaryKey: 'id' });
  t.equal(created.status, 201, 'table created on node1');
  const written = await call(n1, 'PUT', `/v1/tables/items/rows/first`, { n: 1 });
  t.equal(written.status, 201, 'a row written on node1');
  const seq = written.json.seq as number;

  const read = await call(n2, 'GET', `/v1/tables/items/rows/first?minSeq=${seq}`);
  t.equal(read.status, 200, 'node2 reads it with minSeq in the query string');
  t.equal(read.json.n, 1);
  const queried = await call(n3, 'POST', '/v1/query', { table: 'items', where: { n: 1 }, minSeq: seq });
  t.equal(queried.status, 200, 'node3 finds it with minSeq in a query body');
  t.same(queried.json.rows, [{ id: 'first', n: 1 }]);
  const ahead = await call(n2, 'GET', `/v1/tables/items/rows/first?minSeq=${seq + 1_000_000}`);
  t.equal(ahead.status, 503, 'a minSeq the node does not reach within --min-seq-wait-ms answers 503');
  t.equal(ahead.json.code, 'unavailable');
  t.ok(ahead.headers.get('retry-after') !== null, 'with Retry-After');
  const bad = await call(n2, 'GET', '/v1/tables/items/rows/first?minSeq=-1');
  t.equal(bad.status, 400, 'a negative minSeq is a bad request');

  // Users and row policies are rows of the shared log: made on node1, they hold on node2.
  t.equal((await call(n1, 'POST', '/v1/admin/users', { username: 'rita', password: 'rita-password-1', roles: ['reader'] })).status, 201, 'a user made on node1');
  t.equal((await call(n1, 'PUT', '/v1/tables/items/rows/ritas', { n: 2, owner: 'rita' })).status, 201);
  const policy = await call(n1, 'PUT', '/v1/tables/items/policies/own', { appliesTo: { roles: ['reader'] }, read: { owner: { $user: 'name' } } });
  t.equal(policy.status, 201, 'a row policy put on node1');
  const rita = { authorization: `Basic ${Buffer.from('rita:rita-password-1').toString('base64')}` };
  const ritaReads = await fetch(`${n2}/v1/tables/items/rows?minSeq=${policy.json.seq}`, { headers: rita });
  t.equal(ritaReads.status, 200, 'the user signs in on node2');
  t.same(((await ritaReads.json()) as { rows: unknown[] }).rows, [{ id: 'ritas', n: 2, owner: 'rita' }], 'and node2 shows her only the rows the policy lets her read');
  t.equal((await call(n2, 'DELETE', '/v1/tables/items/policies/own')).status, 204, 'the policy deleted on node2');

  t.comment('SIGKILL node3; node1 and node2 commit on until etcd is trimmed past it');
  const downAt = (await call(n3, 'GET', '/v1/admin/cluster')).json.appliedSeq as number;
  await cluster.stopNode(2, 'SIGKILL');
  const acknowledged: Array<{ key: string; n: number }> = [];
  let head = seq;
  let floor = 0;
  // etcd trims only once node3's lease (10 s) has lapsed and a trim round (every 5 s) comes: write until it has, with
  // a bound far above that so a slow machine still gets there.
  const deadline = Date.now() + 100_000;
  for (let round = 0; floor <= downAt + 8 && Date.now() < deadline; round++) {
    // Four commits a round, through both live nodes at once.
    const answers = await Promise.all(
      [n1, n2, n1, n2].map((url, i) => call(url, 'PUT', `/v1/tables/items/rows/r${round}-${i}`, { n: round * 4 + i })),
    );
    answers.forEach((answer, i) => {
      if (answer.status === 201) {
        acknowledged.push({ key: `r${round}-${i}`, n: round * 4 + i });
        head = Math.max(head, answer.json.seq as number);
      }
    });
    if (round % 10 === 9) {
      floor = Number((await etcd.get('driftdb/floor').string()) ?? 0);
      if (floor <= downAt + 8) await sleep(500);
    }
  }
  t.ok(floor > downAt, `etcd was trimmed past node3's log (floor ${floor}, node3 stopped at ${downAt})`);
  t.equal(acknowledged.length > 0, true, `${acknowledged.length} writes acknowledged while node3 was down`);

  t.comment('restart node3');
  cluster.startNode(2);
  await cluster.waitReady(2);
  t.match(fs.readFileSync(path.join(cluster.options.dir, 'node3.log'), 'utf8'), /caught up from a peer/, 'node3 streamed the trimmed records from a peer');
  const status = await call(n3, 'GET', '/v1/admin/cluster');
  t.ok(status.json.appliedSeq >= head, `node3 is ready having applied every acknowledged write (${status.json.appliedSeq} >= ${head})`);
  const [feed1, feed3] = await Promise.all([feedOf(n1, 'items', head), feedOf(n3, 'items', head)]);
  t.equal(feed1.length > acknowledged.length, true, 'node1 has the whole feed');
  t.same(feed3, feed1, 'node3 holds the same commits at the same seqs as node1');
  const found = new Map<string, number>();
  let cursor: string | null = null;
  do {
    const page: { status: number; json: any } = await call(n3, 'GET', `/v1/tables/items/rows?limit=1000${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`);
    t.equal(page.status, 200);
    for (const row of page.json.rows as Array<{ id: string; n: number }>) found.set(row.id, row.n);
    cursor = page.json.nextCursor;
  } while (cursor !== null);
  t.same(
    acknowledged.filter((a) => found.get(a.key) !== a.n),
    [],
    'node3 reads every write acknowledged while it was down',
  );

  // It takes part again: its writes are read on the others.
  const after = await call(n3, 'PUT', '/v1/tables/items/rows/after', { n: -1 });
  t.equal(after.status, 201, 'node3 takes writes again');
  const seen = await call(n1, 'GET', `/v1/tables/items/rows/after?minSeq=${after.json.seq}`);
  t.equal(seen.status, 200, 'node1 reads node3 write');
});

t.test('a node behind by more than one gRPC answer may carry catches up from etcd in ranges that fit', async (t) => {
  const cluster: ClusterHarness = await startCluster();
  t.teardown(() => cluster.down());
  const [n1] = cluster.nodes.map((node) => node.url) as [string];
  t.equal((await call(n1, 'POST', '/v1/tables', { name: 'big', primaryKey: 'id' })).status, 201, 'table created');
  await cluster.stopNode(2, 'SIGTERM');
  // 20 batches of about 3.7 MB: 74 MB in all, past the etcd client's 64 MiB receive limit for one range answer.
  const rows = 20 * 1_000;
  const head = await appendBulkCommits(cluster.endpoints, { table: 'big', count: rows, perBatch: 1_000, padChars: 3_700 });
  cluster.startNode(2);
  await cluster.waitReady(2, 170_000);
  // Asked for 256 batches at once, etcd's answer would exceed what the client may receive, and node3 would fail.
  const status = await call(cluster.nodes[2]!.url, 'GET', '/v1/admin/cluster');
  t.ok(status.json.appliedSeq >= head, `node3 applied every batch (${status.json.appliedSeq} >= ${head})`);
  const table = await call(cluster.nodes[2]!.url, 'GET', '/v1/tables/big');
  t.equal(table.json.rowCount, rows, 'and holds every row');
});

// Cluster mode under faults (http-api.md §10), with real processes: three etcd members and three DriftDB nodes take
// writes and serializable bank transfers through every node while a node is SIGKILLed and restarted, the etcd leader
// is SIGKILLed, and an etcd member is paused and resumed. Afterwards every acknowledged write is readable on every
// node, every node holds the same log (the same commits at the same seqs, so the same asOf answers), and the bank's
// total is the same at every seq. Then etcd loses its quorum: writes answer 503 within a bound, reads go on.

import t from 'tap';
import { call, feedOf, sleep, startCluster, type ClusterHarness } from '../helpers/cluster.js';

const accounts = 8;
const opening = 1000;

interface Acknowledged {
  key: string;
  n: number;
  seq: number;
}

/** Writes unique keys through one node until stopped; records what was acknowledged. */
async function writer(url: string, name: string, acknowledged: Acknowledged[], running: () => boolean): Promise<void> {
  for (let n = 0; running(); n++) {
    const key = `${name}-${n}`;
    const answer = await call(url, 'PUT', `/v1/tables/items/rows/${key}`, { n }, 12_000);
    if (answer.status === 200 || answer.status === 201) acknowledged.push({ key, n, seq: answer.json.seq });
    else if (answer.status === 0) await sleep(100);
  }
}

/** Serializable transfers between random accounts through one node, retried on conflicts; answers the commits made. */
async function banker(url: string, running: () => boolean, seqs: number[]): Promise<void> {
  while (running()) {
    const from = Math.floor(Math.random() * accounts);
    const to = (from + 1 + Math.floor(Math.random() * (accounts - 1))) % accounts;
    const begun = await call(url, 'POST', '/v1/transactions', { isolation: 'serializable' });
    if (begun.status !== 201) {
      await sleep(100);
      continue;
    }
    const tx = begun.json.id as string;
    const txCall = async (method: string, path: string, body?: unknown) => {
      try {
        const response = await fetch(`${url}${path}`, {
          method,
          headers: { authorization: `Basic ${Buffer.from('admin:test-admin-password').toString('base64')}`, 'transaction-id': tx, ...(body ? { 'content-type': 'application/json' } : {}) },
          ...(body ? { body: JSON.stringify(body) } : {}),
          signal: AbortSignal.timeout(12_000),
        });
        return { status: response.status, json: (await response.json().catch(() => undefined)) as any };
      } catch {
        return { status: 0, json: undefined as any };
      }
    };
    const a = await txCall('GET', `/v1/tables/accounts/rows/a${from}`);
    const b = await txCall('GET', `/v1/tables/accounts/rows/a${to}`);
    if (a.status !== 200 || b.status !== 200) {
      await txCall('POST', `/v1/transactions/${tx}/rollback`);
      continue;
    }
    const amount = 1 + Math.floor(Math.random() * 20);
    const puts = [
      await txCall('PUT', `/v1/tables/accounts/rows/a${from}`, { balance: a.json.balance - amount }),
      await txCall('PUT', `/v1/tables/accounts/rows/a${to}`, { balance: b.json.balance + amount }),
    ];
    if (puts.some((put) => put.status !== 200)) {
      await txCall('POST', `/v1/transactions/${tx}/rollback`);
      continue;
    }
    const committed = await txCall('POST', `/v1/transactions/${tx}/commit`);
    if (committed.status === 200) seqs.push(committed.json.seq);
    else if (committed.status !== 409) await txCall('POST', `/v1/transactions/${tx}/rollback`);
  }
}

t.test('writes through three nodes survive a node kill, an etcd leader kill and a paused etcd member', async (t) => {
  const cluster: ClusterHarness = await startCluster();
  t.teardown(() => cluster.down());
  const [n1, n2, n3] = cluster.nodes.map((node) => node.url) as [string, string, string];

  t.equal((await call(n1, 'POST', '/v1/tables', { name: 'items', primaryKey: 'id' })).status, 201, 'table created on node1');
  const accountsTable = await call(n2, 'POST', '/v1/tables', { name: 'accounts', primaryKey: 'id' });
  t.equal(accountsTable.status, 201, 'table created on node2');
  const ops = Array.from({ length: accounts }, (_, i) => ({ op: 'put', table: 'accounts', key: `a${i}`, doc: { balance: opening } }));
  const funded = await call(n3, 'POST', '/v1/batch', { ops, minSeq: accountsTable.json.createdSeq });
  t.equal(funded.status, 200, 'accounts funded through node3 (minSeq waits for the table)');

  let running = true;
  const acknowledged: Acknowledged[] = [];
  const transfers: number[] = [];
  const workload = Promise.all([
    ...cluster.nodes.map((node, i) => writer(node.url, `w${i}`, acknowledged, () => running)),
    ...cluster.nodes.map((node) => banker(node.url, () => running, transfers)),
  ]);

  await sleep(1_500);
  t.comment('SIGKILL node2 and restart it');
  await cluster.stopNode(1, 'SIGKILL');
  await sleep(1_000);
  cluster.startNode(1);
  await cluster.waitReady(1);

  const leader = await cluster.etcdLeader();
  t.ok(leader >= 0, 'an etcd leader is found');
  t.comment(`SIGKILL the etcd leader (etcd${leader + 1}) and restart it`);
  await cluster.signalEtcd(leader, 'SIGKILL');
  await sleep(2_500);
  cluster.startEtcd(leader);
  await cluster.waitEtcd(leader);

  const paused = (await cluster.etcdLeader() + 1) % 3;
  t.comment(`SIGSTOP etcd${paused + 1} for 3 s`);
  await cluster.signalEtcd(paused, 'SIGSTOP');
  await sleep(3_000);
  await cluster.signalEtcd(paused, 'SIGCONT');
  await sleep(1_500);
  running = false;
  await workload;

  t.ok(acknowledged.length > 50, `writes were acknowledged through the faults (${acknowledged.length})`);
  t.ok(transfers.length > 5, `transfers committed through the faults (${transfers.length})`);
  const maxSeq = Math.max(...acknowledged.map((a) => a.seq), ...transfers);

  // Every node holds the same log: the same commits, at the same seqs, with the same times.
  const feeds = await Promise.all([n1, n2, n3].map((url) => feedOf(url, 'items,accounts', maxSeq)));
  t.ok(feeds[0]!.length > 0, 'node1 has a feed');
  t.same(feeds[1], feeds[0], 'node2 holds the same commits as node1');
  t.same(feeds[2], feeds[0], 'node3 holds the same commits as node1');

  // Every acknowledged write is there, at its seq, on every node.
  const written = new Map<string, { seq: number; n: number }>();
  for (const commit of feeds[0]!) {
    for (const change of commit.changes) if (change.table === 'items') written.set(change.key, { seq: commit.seq, n: change.doc.n });
  }
  const missing = acknowledged.filter((a) => written.get(a.key)?.seq !== a.seq || written.get(a.key)?.n !== a.n);
  t.same(missing, [], 'every acknowledged write is in the log at the seq it was answered with');
  const sample = acknowledged.filter((_, i) => i % Math.ceil(acknowledged.length / 20) === 0);
  for (const url of [n1, n2, n3]) {
    const reads = await Promise.all(sample.map((a) => call(url, 'GET', `/v1/tables/items/rows/${a.key}`)));
    t.ok(reads.every((read, i) => read.status === 200 && read.json.n === sample[i]!.n), `${url} reads the sampled acknowledged writes`);
  }

  // The bank's total holds at every seq; asOf reads agree between nodes.
  const balances = new Map<string, number>();
  let broken: number | null = null;
  for (const commit of feeds[0]!) {
    for (const change of commit.changes) if (change.table === 'accounts') balances.set(change.key, change.doc.balance);
    if (balances.size === accounts && [...balances.values()].reduce((x, y) => x + y, 0) !== accounts * opening) broken ??= commit.seq;
  }
  t.equal(broken, null, 'the total of all accounts is the same at every seq');
  const seqs = [...new Set([Math.floor(maxSeq / 3), Math.floor(maxSeq / 2), maxSeq])];
  for (const seq of seqs) {
    const pages = await Promise.all([n1, n2, n3].map((url) => call(url, 'GET', `/v1/tables/accounts/rows?asOf=${seq}`)));
    t.ok(pages.every((page) => page.status === 200), `asOf ${seq} answers on every node`);
    t.same(pages[1]!.json, pages[0]!.json, `node2 answers asOf ${seq} as node1`);
    t.same(pages[2]!.json, pages[0]!.json, `node3 answers asOf ${seq} as node1`);
  }

  t.comment('etcd loses its quorum: two members paused');
  await cluster.signalEtcd(0, 'SIGSTOP');
  await cluster.signalEtcd(1, 'SIGSTOP');
  const refused = await call(n3, 'PUT', '/v1/tables/items/rows/no-quorum', { n: -1 }, 30_000);
  t.equal(refused.status, 503, 'a write without an etcd quorum answers 503 within a bound');
  t.ok(refused.headers.get('retry-after') !== null, 'with Retry-After');
  const read = await call(n3, 'GET', `/v1/tables/items/rows/${acknowledged[0]!.key}`);
  t.equal(read.status, 200, 'reads go on without a quorum');
  let ready = await call(n3, 'GET', '/readyz');
  for (let i = 0; i < 50 && ready.status === 200; i++) ready = await call(n3, 'GET', '/readyz').finally(() => sleep(200));
  t.equal(ready.status, 503, '/readyz says the node is not ready');
  t.match(ready.json?.detail ?? '', /etcd/, 'and says why');
  await cluster.signalEtcd(0, 'SIGCONT');
  await cluster.signalEtcd(1, 'SIGCONT');
  let resumed = await call(n3, 'PUT', '/v1/tables/items/rows/after-quorum', { n: 0 });
  for (let i = 0; i < 40 && resumed.status !== 200 && resumed.status !== 201; i++) {
    await sleep(500);
    resumed = await call(n3, 'PUT', '/v1/tables/items/rows/after-quorum', { n: 0 });
  }
  t.equal(resumed.status, 201, 'writes resume once the quorum is back');
});

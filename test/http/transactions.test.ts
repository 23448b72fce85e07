// Transactions through the real server: each anomaly happens where its isolation level allows it and cannot
// happen where the level forbids it; locks, deadlocks, timeouts, expiry, ownership, savepoints and batches.

import t from 'tap';
import { metricValue, scrape, waitForMetric } from '../helpers/metrics.js';
import { basicAuth, sleep, startServer, type Response, type TestServer } from '../helpers/server.js';

type Test = Parameters<Parameters<typeof t.test>[0]>[0];

interface Client {
  server: TestServer;
  call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Response>;
  begin(isolation: string, extra?: Record<string, unknown>): Promise<string>;
  get(table: string, key: string, tx?: string): Promise<Response>;
  put(table: string, key: string, doc: unknown, tx?: string): Promise<Response>;
  query(body: unknown, tx?: string): Promise<Response>;
  commit(tx: string): Promise<Response>;
}

function client(server: TestServer, auth = server.auth): Client {
  const call = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> =>
    server.request(method, path, { ...(body === undefined ? {} : { body }), headers, auth });
  const txHeader = (tx?: string): Record<string, string> => (tx === undefined ? {} : { 'transaction-id': tx });
  return {
    server,
    call,
    async begin(isolation, extra = {}) {
      const res = await call('POST', '/v1/transactions', { isolation, ...extra });
      if (res.status !== 201) throw new Error(`begin: ${res.status} ${res.text}`);
      return res.json.id as string;
    },
    get: (table, key, tx) => call('GET', `/v1/tables/${table}/rows/${encodeURIComponent(key)}`, undefined, txHeader(tx)),
    put: (table, key, doc, tx) => call('PUT', `/v1/tables/${table}/rows/${encodeURIComponent(key)}`, doc, txHeader(tx)),
    query: (body, tx) => call('POST', '/v1/query', body, txHeader(tx)),
    commit: (tx) => call('POST', `/v1/transactions/${tx}/commit`),
  };
}

async function setup(t: Test, args: string[] = []): Promise<Client> {
  // A lock wait here ends when the holder commits or rolls back, never by the clock: the one test of the timeout
  // passes its own --lock-timeout-ms.
  const server = await startServer({ args: ['--lock-timeout-ms', '600000', ...args] });
  t.teardown(() => server.stop());
  const c = client(server);
  const bob = await c.call('POST', '/v1/admin/users', { username: 'bob', password: 'bob-password', roles: ['writer'] });
  t.equal(bob.status, 201, 'user bob created');
  const created = await c.call('POST', '/v1/tables', { name: 'acc', primaryKey: 'id', indexes: ['dept'] });
  t.equal(created.status, 201, 'table created');
  return c;
}

async function lockWaits(c: Client): Promise<number> {
  return metricValue(await scrape(c.server), 'driftdb_lock_waits_total');
}

async function seed(c: Client, rows: Record<string, Record<string, unknown>>): Promise<void> {
  for (const [key, doc] of Object.entries(rows)) {
    const res = await c.put('acc', key, doc);
    if (res.status >= 300) throw new Error(`seed ${key}: ${res.status} ${res.text}`);
  }
}

t.test('dirty reads happen only at read_uncommitted', async (t) => {
  const c = await setup(t);
  await seed(c, { x: { v: 1 } });
  const writer = await c.begin('read_committed');
  t.equal((await c.put('acc', 'x', { v: 2 }, writer)).status, 200);
  const dirty = await c.begin('read_uncommitted');
  t.same((await c.get('acc', 'x', dirty)).json, { id: 'x', v: 2 }, 'read_uncommitted sees the pending write');
  t.equal((await c.query({ table: 'acc', where: { v: 2 } }, dirty)).json.rows.length, 1, 'queries see it too');
  for (const level of ['read_committed', 'repeatable_read', 'snapshot', 'serializable']) {
    const tx = await c.begin(level);
    t.same((await c.get('acc', 'x', tx)).json, { id: 'x', v: 1 }, `${level} does not see it`);
  }
  t.same((await c.get('acc', 'x')).json, { id: 'x', v: 1 }, 'autocommit readers do not see it');
  t.equal((await c.call('POST', `/v1/transactions/${writer}/rollback`)).status, 200);
  t.same((await c.get('acc', 'x', dirty)).json, { id: 'x', v: 1 }, 'the rolled-back write is gone');
});

t.test('non-repeatable reads happen at read_committed, not at repeatable_read or above', async (t) => {
  const c = await setup(t);
  await seed(c, { x: { v: 1 } });
  const rc = await c.begin('read_committed');
  const rr = await c.begin('repeatable_read');
  const ss = await c.begin('snapshot');
  for (const tx of [rc, rr, ss]) t.equal((await c.get('acc', 'x', tx)).json.v, 1);
  await c.put('acc', 'x', { v: 2 });
  t.equal((await c.get('acc', 'x', rc)).json.v, 2, 'read_committed reads the new value');
  t.equal((await c.get('acc', 'x', rr)).json.v, 1, 'repeatable_read reads the same value again');
  t.equal((await c.get('acc', 'x', ss)).json.v, 1, 'snapshot reads the same value again');
});

t.test('lost updates happen at read_committed and are refused with serialization_failure above it', async (t) => {
  const c = await setup(t);
  await seed(c, { counter: { n: 0 } });
  const increment = async (level: string): Promise<Response[]> => {
    const a = await c.begin(level);
    const b = await c.begin(level);
    const na = (await c.get('acc', 'counter', a)).json.n as number;
    const nb = (await c.get('acc', 'counter', b)).json.n as number;
    await c.put('acc', 'counter', { n: na + 1 }, a);
    const waitsBefore = await lockWaits(c);
    const second = c.put('acc', 'counter', { n: nb + 1 }, b);
    // The second writer is queued on the lock (read_committed) or has failed at once (above it): either way it has
    // decided before the first commits, which is the order the test is about.
    await Promise.race([second, waitForMetric(c.server, 'driftdb_lock_waits_total', waitsBefore + 1)]);
    const commitA = await c.commit(a);
    const writeB = await second;
    const commitB = writeB.status < 300 ? await c.commit(b) : writeB;
    return [commitA, writeB, commitB];
  };
  const [, rcWrite] = await increment('read_committed');
  t.equal(rcWrite.status, 200, 'the waiting read_committed writer proceeds after the holder commits');
  t.equal((await c.get('acc', 'counter')).json.n, 1, 'read_committed lost one of two increments');
  for (const level of ['repeatable_read', 'snapshot', 'serializable']) {
    const [commitA, writeB] = await increment(level);
    t.equal(commitA.status, 200);
    t.equal(writeB.status, 409, `${level}: the second writer fails`);
    t.equal(writeB.json.code, 'serialization_failure');
    t.equal(writeB.json.retryable, true);
  }
  t.equal((await c.call('GET', '/v1/admin/stats')).json.conflicts, 3, 'stats count serialization failures');
});

t.test('write skew happens under snapshot and is refused under serializable', async (t) => {
  const c = await setup(t);
  const run = async (level: string): Promise<number[]> => {
    await seed(c, { alice: { onCall: true }, bob: { onCall: true } });
    const a = await c.begin(level);
    const b = await c.begin(level);
    for (const tx of [a, b]) {
      const res = await c.query({ table: 'acc', where: { onCall: true } }, tx);
      t.equal(res.json.rows.length, 2);
    }
    await c.put('acc', 'alice', { onCall: false }, a);
    await c.put('acc', 'bob', { onCall: false }, b);
    return [(await c.commit(a)).status, (await c.commit(b)).status];
  };
  t.same(await run('snapshot'), [200, 200], 'snapshot lets both doctors go off call');
  t.same(await run('repeatable_read'), [200, 200], 'so does repeatable_read');
  const [first, second] = await run('serializable');
  t.equal(first, 200);
  t.equal(second, 409, 'serializable refuses the second commit');
});

t.test('phantoms appear at read_committed, not in one snapshot, and fail serializable commits', async (t) => {
  const c = await setup(t);
  await seed(c, { a1: { dept: 'a' }, a2: { dept: 'a' } });
  const count = async (tx: string): Promise<number> => (await c.query({ table: 'acc', where: { dept: 'a' } }, tx)).json.rows.length;
  const rc = await c.begin('read_committed');
  const rr = await c.begin('repeatable_read');
  const sz = await c.begin('serializable');
  for (const tx of [rc, rr, sz]) t.equal(await count(tx), 2);
  await c.put('acc', 'a3', { dept: 'a' });
  t.equal(await count(rc), 3, 'read_committed sees the phantom');
  t.equal(await count(rr), 2, 'repeatable_read does not');
  await c.put('acc', 'summary-rr', { total: 2 }, rr);
  t.equal((await c.commit(rr)).status, 200, 'repeatable_read commits');
  await c.put('acc', 'summary-sz', { total: 2 }, sz);
  const res = await c.commit(sz);
  t.equal(res.status, 409, 'serializable fails: its query result changed');
  t.equal(res.json.code, 'serialization_failure');
  t.equal((await c.get('acc', 'summary-sz', sz)).json.code, 'transaction_aborted', 'later use answers transaction_aborted');
});

t.test('the read-only anomaly is possible under snapshot and not under serializable', async (t) => {
  const c = await setup(t);
  const run = async (level: string): Promise<{ t2: number; t3: number }> => {
    await seed(c, { checking: { balance: 0 }, saving: { balance: 0 } });
    const t2 = await c.begin(level);
    const x = (await c.get('acc', 'checking', t2)).json.balance as number;
    const y = (await c.get('acc', 'saving', t2)).json.balance as number;
    const t1 = await c.begin(level);
    const saving = (await c.get('acc', 'saving', t1)).json.balance as number;
    await c.put('acc', 'saving', { balance: saving + 20 }, t1);
    t.equal((await c.commit(t1)).status, 200);
    const t3 = await c.begin(level, { readOnly: true });
    const seen = [(await c.get('acc', 'checking', t3)).json.balance, (await c.get('acc', 'saving', t3)).json.balance];
    t.same(seen, [0, 20], 'the read-only transaction sees the deposit and no withdrawal');
    const t3Commit = (await c.commit(t3)).status;
    await c.put('acc', 'checking', { balance: x + y - 10 < 0 ? x - 11 : x - 10 }, t2);
    return { t2: (await c.commit(t2)).status, t3: t3Commit };
  };
  t.same(await run('snapshot'), { t2: 200, t3: 200 }, 'snapshot commits all three: T3 saw a state no serial order has');
  t.same(await run('serializable'), { t2: 409, t3: 200 }, 'serializable refuses the withdrawal that read stale savings');
});

t.test('a two-transaction deadlock aborts the one that closes the cycle at once; the other proceeds', async (t) => {
  const c = await setup(t);
  await seed(c, { a: { v: 0 }, b: { v: 0 } });
  const t1 = await c.begin('read_committed');
  const t2 = await c.begin('read_committed');
  await c.put('acc', 'a', { v: 1 }, t1);
  await c.put('acc', 'b', { v: 2 }, t2);
  const waiting = c.put('acc', 'b', { v: 1 }, t1);
  // t1 is queued for b before t2 asks for a, so t2's request is the one that closes the cycle.
  await waitForMetric(c.server, 'driftdb_lock_waits_total', 1);
  const victim = await c.put('acc', 'a', { v: 2 }, t2);
  // The lock timeout is ten minutes: only deadlock detection can have answered this.
  t.equal(victim.status, 409);
  t.equal(victim.json.code, 'deadlock_detected');
  t.equal(victim.json.retryable, true);
  t.equal((await waiting).status, 200, 'the other transaction gets its lock');
  t.equal((await c.commit(t1)).status, 200);
  t.same((await c.get('acc', 'b')).json, { id: 'b', v: 1 });
  t.match((await c.call('GET', '/v1/admin/stats')).json, { deadlocks: 1, openTransactions: 0 }, 'stats count the deadlock');
});

t.test('a three-transaction deadlock is detected too', async (t) => {
  const c = await setup(t);
  await seed(c, { a: {}, b: {}, c: {} });
  const [t1, t2, t3] = [await c.begin('serializable'), await c.begin('serializable'), await c.begin('serializable')];
  await c.put('acc', 'a', { by: 1 }, t1);
  await c.put('acc', 'b', { by: 2 }, t2);
  await c.put('acc', 'c', { by: 3 }, t3);
  const w1 = c.put('acc', 'b', { by: 1 }, t1);
  const w2 = c.put('acc', 'c', { by: 2 }, t2);
  await waitForMetric(c.server, 'driftdb_lock_waits_total', 2);
  const closing = await c.put('acc', 'a', { by: 3 }, t3);
  t.equal(closing.json.code, 'deadlock_detected');
  const second = await w2;
  t.equal(second.status, 200, 't2 gets c once t3 is gone');
  t.equal((await c.commit(t2)).status, 200);
  // t1 waited for b, which t2 changed after t1's snapshot: a serializable waiter then fails.
  const first = await w1;
  t.equal(first.json.code, 'serialization_failure');
});

t.test('a writer waits for a lock until --lock-timeout-ms, then fails with lock_timeout', async (t) => {
  const c = await setup(t, ['--lock-timeout-ms', '500']);
  await seed(c, { a: {} });
  const holder = await c.begin('read_committed');
  await c.put('acc', 'a', { v: 1 }, holder);
  const started = Date.now();
  const autocommit = await c.put('acc', 'a', { v: 2 });
  t.equal(autocommit.status, 409);
  t.equal(autocommit.json.code, 'lock_timeout');
  t.ok(Date.now() - started >= 450, 'it waited for the lock timeout');
  const waiter = await c.begin('read_committed');
  t.equal((await c.put('acc', 'a', { v: 3 }, waiter)).json.code, 'lock_timeout');
  t.equal((await c.call('GET', '/v1/admin/stats')).json.conflicts, 2, 'stats count both timeouts as conflicts');
  t.equal((await c.put('acc', 'z', { v: 3 }, waiter)).json.code, 'transaction_aborted');
  t.equal((await c.call('GET', `/v1/transactions/${waiter}`)).json.code, 'transaction_aborted');
  t.equal((await c.call('POST', `/v1/transactions/${waiter}/rollback`)).status, 200, 'an aborted transaction rolls back');
  t.equal((await c.call('GET', `/v1/transactions/${waiter}`)).status, 404, 'and is gone after that');
});

t.test('an idle transaction is rolled back, its locks released, and its id answers 410', async (t) => {
  const c = await setup(t, ['--tx-idle-timeout-ms', '300']);
  await seed(c, { a: { v: 0 } });
  const idle = await c.begin('serializable');
  await c.put('acc', 'a', { v: 1 }, idle);
  await sleep(700);
  const res = await c.put('acc', 'a', { v: 2 });
  t.equal(res.status, 200, 'the lock was released');
  const late = await c.get('acc', 'a', idle);
  t.equal(late.status, 410);
  t.equal(late.json.code, 'transaction_expired');
  t.same((await c.get('acc', 'a')).json, { id: 'a', v: 2 });
});

t.test("another user's transaction id is not found; ended transactions are not found", async (t) => {
  const c = await setup(t);
  const bob = client(c.server, basicAuth('bob', 'bob-password'));
  const mine = await c.begin('serializable');
  for (const path of [`/v1/transactions/${mine}`]) {
    const res = await bob.call('GET', path);
    t.equal(res.status, 404);
    t.equal(res.json.code, 'transaction_not_found');
  }
  t.equal((await bob.get('acc', 'x', mine)).json.code, 'transaction_not_found');
  t.equal((await bob.commit(mine)).status, 404);
  const info = await c.call('GET', `/v1/transactions/${mine}`);
  t.match(info.json, { id: mine, isolation: 'serializable', state: 'active' });
  t.same((await c.commit(mine)).json, { seq: null }, 'a transaction that wrote nothing commits with seq null');
  t.equal((await c.call('GET', `/v1/transactions/${mine}`)).status, 404);
  t.equal((await c.get('acc', 'x', 'not-a-transaction-id')).status, 404);
});

t.test('read-only transactions refuse writes; commit makes all writes visible under one seq', async (t) => {
  const c = await setup(t);
  const ro = await c.begin('serializable', { readOnly: true });
  const refused = await c.put('acc', 'a', {}, ro);
  t.equal(refused.status, 409);
  t.equal(refused.json.code, 'read_only');
  const tx = await c.begin('serializable');
  t.equal((await c.put('acc', 'a', { n: 1 }, tx)).status, 201);
  t.equal((await c.put('acc', 'b', { n: 2 }, tx)).status, 201);
  t.same((await c.get('acc', 'a', tx)).json, { id: 'a', n: 1 }, 'a transaction reads its own writes');
  t.equal((await c.get('acc', 'a')).status, 404, 'others do not see them before commit');
  const { seq } = (await c.commit(tx)).json;
  t.type(seq, 'number');
  t.equal((await c.get('acc', 'a')).headers.etag, `"${seq}"`);
  t.equal((await c.get('acc', 'b')).headers.etag, `"${seq}"`, 'both rows carry the one commit seq');
});

t.test('rolling back to a savepoint undoes only the writes after it', async (t) => {
  const c = await setup(t);
  const tx = await c.begin('serializable');
  await c.put('acc', 'a', { v: 1 }, tx);
  t.equal((await c.call('POST', `/v1/transactions/${tx}/savepoints`, { name: 's1' })).status, 201);
  await c.put('acc', 'b', { v: 1 }, tx);
  await c.put('acc', 'a', { v: 2 }, tx);
  t.equal((await c.call('POST', `/v1/transactions/${tx}/savepoints/s1/rollback`)).status, 200);
  t.equal((await c.get('acc', 'b', tx)).status, 404, 'the later insert is undone');
  t.equal((await c.get('acc', 'a', tx)).json.v, 1, 'the later update is undone');
  await c.put('acc', 'c', { v: 1 }, tx);
  t.equal((await c.call('DELETE', `/v1/transactions/${tx}/savepoints/s1`)).status, 204);
  t.equal((await c.call('POST', `/v1/transactions/${tx}/savepoints/s1/rollback`)).status, 404, 'released');
  t.equal((await c.commit(tx)).status, 200);
  const rows = (await c.call('GET', '/v1/tables/acc/rows')).json.rows.map((r: { id: string }) => r.id);
  t.same(rows, ['a', 'c']);
});

t.test('a batch is all or nothing and names the failing operation', async (t) => {
  const c = await setup(t);
  const ok = await c.call('POST', '/v1/batch', {
    ops: [
      { op: 'put', table: 'acc', key: 'a', doc: { v: 1 } },
      { op: 'put', table: 'acc', key: 'b', doc: { v: 2 } },
      { op: 'get', table: 'acc', key: 'a' },
      { op: 'query', table: 'acc', where: { v: { $gte: 1 } } },
    ],
  });
  t.equal(ok.status, 200);
  t.type(ok.json.seq, 'number');
  t.same(ok.json.results[2].doc, { id: 'a', v: 1 }, 'a get sees the batch\'s own write');
  t.equal(ok.json.results[3].rows.length, 2);
  t.same(Object.keys(ok.json.results[3]).sort(), ['nextCursor', 'op', 'rows', 'seq'], 'a query result shows the page and nothing else');
  const failed = await c.call('POST', '/v1/batch', {
    ops: [
      { op: 'put', table: 'acc', key: 'c', doc: { v: 3 } },
      { op: 'patch', table: 'acc', key: 'a', doc: { v: 9 }, ifSeq: ok.json.seq - 1 },
    ],
  });
  t.equal(failed.status, 412);
  t.equal(failed.json.opIndex, 1);
  t.equal((await c.get('acc', 'c')).status, 404, 'nothing of the failed batch was written');
  const conditional = await c.call('POST', '/v1/batch', {
    ops: [{ op: 'delete', table: 'acc', key: 'a', ifSeq: ok.json.seq }],
  });
  t.equal(conditional.status, 200);
  const missing = await c.call('POST', '/v1/batch', { ops: [{ op: 'delete', table: 'nope', key: 'a' }] });
  t.match(missing.json, { code: 'table_not_found', opIndex: 0 });
});

t.test('past the open-transaction cap a begin answers 503 with Retry-After; aborted ones free their slot', async (t) => {
  const c = await setup(t, ['--tx-per-user-max', '3', '--lock-timeout-ms', '500']);
  await seed(c, { a: { v: 0 } });
  const holder = await c.begin('read_committed');
  await c.put('acc', 'a', { v: 1 }, holder);
  const doomed = await c.begin('read_committed');
  t.equal((await c.put('acc', 'a', { v: 2 }, doomed)).json.code, 'lock_timeout');
  await c.begin('serializable');
  await c.begin('serializable');
  const res = await c.call('POST', '/v1/transactions', {});
  t.equal(res.status, 503);
  t.equal(res.json.code, 'unavailable');
  t.ok(res.headers['retry-after']);
});

t.test('concurrent serializable transfers keep the total constant at every committed seq', async (t) => {
  const c = await setup(t, ['--lock-timeout-ms', '2000']);
  const accounts = 8;
  let startSeq = 0;
  for (let i = 0; i < accounts; i++) startSeq = (await c.put('acc', `a${i}`, { balance: 100 })).json.seq as number;
  let retries = 0;
  const transfer = async (clientIndex: number, n: number): Promise<void> => {
    for (let attempt = 0; attempt < 50; attempt++) {
      const from = `a${(clientIndex + n) % accounts}`;
      const to = `a${(clientIndex * 3 + n + 1) % accounts}`;
      if (from === to) return;
      const tx = await c.begin('serializable');
      const a = await c.get('acc', from, tx);
      const b = await c.get('acc', to, tx);
      const amount = 1 + ((clientIndex + n) % 7);
      const w1 = a.status === 200 ? await c.put('acc', from, { balance: a.json.balance - amount }, tx) : a;
      const w2 = w1.status < 300 ? await c.put('acc', to, { balance: b.json.balance + amount }, tx) : w1;
      const done = w2.status < 300 ? await c.commit(tx) : w2;
      if (done.status === 200) return;
      if (done.json?.retryable !== true && done.json?.code !== 'transaction_aborted') throw new Error(`transfer: ${done.status} ${done.text}`);
      await c.call('POST', `/v1/transactions/${tx}/rollback`);
      retries++;
    }
    throw new Error('a transfer did not get through in 50 attempts');
  };
  await Promise.all(
    Array.from({ length: 16 }, async (_, i) => {
      for (let n = 0; n < 6; n++) await transfer(i, n);
    }),
  );
  t.comment(`retries: ${retries}`);
  const endSeq = (await c.call('GET', '/v1/tables/acc/rows')).json.seq as number;
  for (let seq = startSeq; seq <= endSeq; seq++) {
    const rows = (await c.call('GET', `/v1/tables/acc/rows?asOf=${seq}`)).json.rows as Array<{ balance: number }>;
    const total = rows.reduce((sum, r) => sum + r.balance, 0);
    if (total !== accounts * 100) t.fail(`total ${total} at seq ${seq}`);
  }
  t.pass(`total constant over seqs ${startSeq}..${endSeq}`);
});

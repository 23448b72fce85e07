// The slow-query log and the metrics through the server (http-api.md §7): what an entry holds, who may read
// /metrics, and that every engine figure the issue names moves when the engine does the thing it counts.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { expectProblem, startApp } from '../helpers/app.js';
import { metricValue, parseMetrics, scrape, waitForMetric } from '../helpers/metrics.js';
import { basicAuth, makeTempDir, startServer } from '../helpers/server.js';

t.test('with a threshold of 0 every data-route request is an entry, failed ones included, newest first', async (t) => {
  const { call } = await startApp(t, ['--slow-query-threshold-ms', '0']);
  await call('POST', '/v1/tables', { body: { name: 'users', primaryKey: 'id' } });
  await call('PUT', '/v1/tables/users/rows/ada', { body: { city: 'Paris' } });
  await call('POST', '/v1/query', { body: { table: 'users', where: { city: 'Paris' } } });
  await call('GET', '/v1/tables/users/rows/nobody');
  const begin = await call('POST', '/v1/transactions', { body: {} });
  const tx = begin.json.id as string;
  await call('PUT', '/v1/tables/users/rows/bob', { body: { city: 'Rome' }, headers: { 'transaction-id': tx } });
  await call('POST', `/v1/transactions/${tx}/commit`);
  await call('GET', '/healthz');
  await call('GET', '/v1/admin/stats');

  const res = await call('GET', '/v1/admin/slow-queries?limit=100');
  t.equal(res.status, 200);
  t.equal(res.json.thresholdMs, 0);
  const entries = res.json.entries as Array<Record<string, any>>;
  t.same(
    entries.map((e) => `${e.method} ${e.route} ${e.status}`),
    [
      'POST /v1/transactions/:id/commit 200',
      'PUT /v1/tables/:table/rows/:key 201',
      'POST /v1/transactions 201',
      'GET /v1/tables/:table/rows/:key 404',
      'POST /v1/query 200',
      'PUT /v1/tables/:table/rows/:key 201',
      'POST /v1/tables 201',
    ],
    'data routes only (not health, not admin), newest first',
  );
  const [commit, txPut, , notFound, query, put] = entries;
  t.match(put, { table: 'users', statement: 'PUT /v1/tables/users/rows/ada', user: 'admin', rows: 1, status: 201 });
  t.type(put!.id, 'string');
  t.match(put!.requestId, /\S/);
  t.ok(Number.isFinite(Date.parse(put!.ts)), 'ts is an instant');
  t.ok(put!.durationMs >= 0);
  t.notOk('error' in put!, 'a success has no error');
  t.match(notFound, { status: 404, error: 'row_not_found', rows: 0, table: 'users' });
  t.match(query, { table: 'users', rows: 1, statement: 'POST /v1/query {"table":"users","where":{"city":"Paris"},"limit":100}' });
  t.match(txPut, { transactionId: tx });
  t.match(commit, { transactionId: tx, rows: 1, route: '/v1/transactions/:id/commit' });
  t.equal(res.json.stats.count, entries.length);
  t.ok(res.json.stats.max >= res.json.stats.p50);

  t.equal((await call('GET', '/v1/admin/slow-queries?limit=2')).json.entries.length, 2, 'limit');
  expectProblem(t, await call('GET', '/v1/admin/slow-queries?limit=0'), 400, 'validation_failed');
  t.equal((await call('DELETE', '/v1/admin/slow-queries')).status, 204);
  t.same((await call('GET', '/v1/admin/slow-queries')).json.entries, [], 'cleared');
});

t.test('requests under the threshold are not recorded; redaction hides literals', async (t) => {
  const fast = await startApp(t, ['--slow-query-threshold-ms', '600000']);
  await fast.call('POST', '/v1/tables', { body: { name: 'users', primaryKey: 'id' } });
  t.same((await fast.call('GET', '/v1/admin/slow-queries')).json, {
    thresholdMs: 600000,
    entries: [],
    stats: { count: 0, p50: null, p95: null, p99: null, max: null },
  });
  const redacting = await startApp(t, ['--slow-query-threshold-ms', '0', '--slow-query-redact']);
  await redacting.call('POST', '/v1/tables', { body: { name: 'users', primaryKey: 'id' } });
  await redacting.call('POST', '/v1/query', { body: { table: 'users', where: { email: 'ada@example.com' } } });
  await redacting.call('GET', '/v1/tables/users/rows/ada%40example.com?asOf=1');
  const [get, query] = (await redacting.call('GET', '/v1/admin/slow-queries')).json.entries;
  t.equal(get.statement, 'GET /v1/tables/users/rows/??asOf=?');
  t.equal(query.statement, 'POST /v1/query {"table":"users","where":{"email":"?"},"limit":100}');
});

t.test('the slow-query routes and /metrics need role admin; --metrics-public opens /metrics only', async (t) => {
  const { call, users } = await startApp(t);
  if (users.get('reader1') === undefined) await users.create({ username: 'reader1', password: 'reader-password', roles: ['reader'] });
  const reader = basicAuth('reader1', 'reader-password');
  for (const [method, url] of [['GET', '/v1/admin/slow-queries'], ['DELETE', '/v1/admin/slow-queries'], ['GET', '/metrics']] as const) {
    expectProblem(t, await call(method, url, { auth: false }), 401, 'unauthorized');
    expectProblem(t, await call(method, url, { auth: reader }), 403, 'forbidden');
  }
  const metrics = await call('GET', '/metrics');
  t.equal(metrics.status, 200);
  t.match(String(metrics.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  const open = await startApp(t, ['--metrics-public']);
  t.equal((await open.call('GET', '/metrics', { auth: false })).status, 200, 'no credentials needed');
  expectProblem(t, await open.call('GET', '/v1/admin/slow-queries', { auth: false }), 401, 'unauthorized');
});

t.test('--observability off: /metrics answers 404 and nothing is recorded', async (t) => {
  const { call } = await startApp(t, ['--observability', 'off', '--slow-query-threshold-ms', '0']);
  await call('POST', '/v1/tables', { body: { name: 'users', primaryKey: 'id' } });
  expectProblem(t, await call('GET', '/metrics'), 404, 'not_found');
  t.same((await call('GET', '/v1/admin/slow-queries')).json.entries, []);
});

t.test('the request histogram counts each answer under its method, route template and status', async (t) => {
  const { call } = await startApp(t);
  await call('POST', '/v1/tables', { body: { name: 'users', primaryKey: 'id' } });
  for (const key of ['a', 'b', 'c']) await call('PUT', `/v1/tables/users/rows/${key}`, { body: {} });
  await call('GET', '/v1/tables/users/rows/zzz');
  const samples = parseMetrics((await call('GET', '/metrics')).text);
  const put = { method: 'PUT', route: '/v1/tables/:table/rows/:key', status_code: '201' };
  t.equal(metricValue(samples, 'driftdb_http_request_duration_seconds_count', put), 3);
  t.equal(metricValue(samples, 'driftdb_http_request_duration_seconds_bucket', { ...put, le: '+Inf' }), 3);
  t.ok(metricValue(samples, 'driftdb_http_request_duration_seconds_sum', put) > 0);
  t.equal(metricValue(samples, 'driftdb_http_request_duration_seconds_count', { method: 'GET', status_code: '404' }), 1);
  const buckets = samples.filter((s) => s.name === 'driftdb_http_request_duration_seconds_bucket' && s.labels['status_code'] === '201' && s.labels['method'] === 'PUT');
  const counts = buckets.map((s) => s.value);
  t.same(counts, [...counts].sort((a, b) => a - b), 'buckets are cumulative');
});

t.test('a live server exports the names of §7 and its engine figures follow the engine', async (t) => {
  const dataDir = path.join(makeTempDir(), 'data');
  const slowFile = path.join(makeTempDir(), 'slow.jsonl');
  const server = await startServer({
    dataDir,
    args: ['--lock-timeout-ms', '60000', '--slow-query-threshold-ms', '0', '--slow-query-log-path', slowFile, '--slow-query-stdout'],
  });
  t.teardown(() => server.stop());
  const call = (method: string, url: string, body?: unknown, headers: Record<string, string> = {}) =>
    server.request(method, url, { ...(body === undefined ? {} : { body }), headers });
  await call('POST', '/v1/tables', { name: 'acc', primaryKey: 'id' });
  // The system tables (users, tokens, the audit head) hold rows and versions too: count from here.
  const before = (await call('GET', '/v1/admin/stats')).json;
  const writtenBefore = metricValue(await scrape(server), 'driftdb_rows_written_total');
  await call('PUT', '/v1/tables/acc/rows/a', { v: 0 });
  await call('PUT', '/v1/tables/acc/rows/b', { v: 0 });

  // A lock wait, then a deadlock: t1 holds a, t2 holds b, t1 waits for b, t2 asks for a.
  const begin = async (): Promise<string> => (await call('POST', '/v1/transactions', { isolation: 'read_committed' })).json.id;
  const [t1, t2] = [await begin(), await begin()];
  await call('PUT', '/v1/tables/acc/rows/a', { v: 1 }, { 'transaction-id': t1 });
  await call('PUT', '/v1/tables/acc/rows/b', { v: 2 }, { 'transaction-id': t2 });
  const waiting = call('PUT', '/v1/tables/acc/rows/b', { v: 1 }, { 'transaction-id': t1 });
  await waitForMetric(server, 'driftdb_lock_waits_total', 1);
  t.equal((await call('PUT', '/v1/tables/acc/rows/a', { v: 2 }, { 'transaction-id': t2 })).json.code, 'deadlock_detected');
  t.equal((await waiting).status, 200);
  t.equal((await call('POST', `/v1/transactions/${t1}/commit`)).status, 200);

  // A serialization failure: two serializable transactions read and write the same row.
  const s1 = (await call('POST', '/v1/transactions', {})).json.id;
  const s2 = (await call('POST', '/v1/transactions', {})).json.id;
  await call('GET', '/v1/tables/acc/rows/a', undefined, { 'transaction-id': s1 });
  await call('GET', '/v1/tables/acc/rows/a', undefined, { 'transaction-id': s2 });
  await call('PUT', '/v1/tables/acc/rows/a', { v: 3 }, { 'transaction-id': s1 });
  t.equal((await call('POST', `/v1/transactions/${s1}/commit`)).status, 200);
  t.equal((await call('PUT', '/v1/tables/acc/rows/a', { v: 4 }, { 'transaction-id': s2 })).json.code, 'serialization_failure');
  t.equal((await call('POST', '/v1/admin/checkpoint')).status, 200);

  // Read before the scrape: it is a (slow, at threshold 0) request of its own, which the scrape must count.
  const accVersions = (await call('POST', '/v1/query', { table: 'acc', history: true })).json.rows.length;
  const samples = await scrape(server);
  const stats = (await call('GET', '/v1/admin/stats')).json;
  const value = (name: string, labels: Record<string, string> = {}) => metricValue(samples, name, labels);
  t.equal(value('driftdb_commits_total'), stats.commits, 'commits come from the engine figures');
  t.equal(value('driftdb_seq'), stats.seq);
  t.equal(value('driftdb_rows'), stats.rows);
  // The system tables may gain a row meanwhile (the audit head is recorded as entries are written): count acc's.
  t.equal(stats.rows - before.rows >= 2, true, 'the two rows of acc are counted');
  t.equal(value('driftdb_table_rows', { table: 'acc' }), 2);
  t.equal(value('driftdb_versions_held'), stats.versions);
  t.ok(stats.versions - before.versions >= 5, 'a, b, then a in t1, b in t1 (t2 failed), a in s1 (and perhaps an audit head)');
  t.equal(accVersions, 5, 'acc holds exactly those five versions');
  // At least this scenario's five: the audit head may be recorded (a system row) meanwhile.
  t.ok(value('driftdb_rows_written_total') - writtenBefore >= 5, 'rows written count every row event');
  t.equal(value('driftdb_log_bytes'), stats.logBytes);
  t.equal(value('driftdb_log_written_bytes_total'), stats.logBytes, 'every byte of this log was written by this process');
  t.equal(value('driftdb_open_transactions'), 0);
  t.equal(value('driftdb_lock_waits_total'), 1);
  t.equal(value('driftdb_deadlocks_total'), 1);
  t.equal(value('driftdb_serialization_failures_total'), 1);
  t.equal(value('driftdb_conflicts_total', { code: 'deadlock_detected' }), 1);
  t.equal(value('driftdb_fsync_duration_seconds_count'), value('driftdb_group_commit_records_count'), 'one fsync per group');
  t.equal(value('driftdb_group_commit_records_sum'), stats.commits, 'every commit record was in some group');
  t.equal(value('driftdb_checkpoint_duration_seconds_count'), 1);
  t.ok(value('driftdb_heap_used_bytes') > 0 && value('driftdb_heap_used_bytes') < value('driftdb_heap_limit_bytes'));
  for (const name of ['driftdb_process_cpu_seconds_total', 'driftdb_nodejs_heap_size_used_bytes', 'driftdb_nodejs_eventloop_lag_seconds']) {
    t.ok(samples.some((s) => s.name === name), `Node process metric ${name}`);
  }
  t.ok(value('driftdb_slow_queries_total') > 0, 'slow queries are counted');

  const listed = (await call('GET', `/v1/admin/slow-queries?limit=1000`)).json.entries.map((e: { id: string }) => e.id);
  t.equal(listed.length, value('driftdb_slow_queries_total'));
  // A clean stop writes out what is still queued for the file.
  t.equal(await server.stop(), 0);
  const fileIds = readFileSync(slowFile, 'utf8').trim().split('\n').map((line) => (JSON.parse(line) as { id: string }).id);
  t.same(fileIds.reverse(), listed, 'the file holds every entry, oldest first');
  t.equal((server.stdout().match(/"msg":"slow query"/g) ?? []).length, listed.length, '--slow-query-stdout logs each');
});

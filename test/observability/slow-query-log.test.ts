// The slow-query log on its own: ring order and bound, percentiles, clearing, the rotated file, stdout lines, and
// how statements are told and redacted.

import { readFileSync, existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import t from 'tap';
import { SlowQueryLog, slowQueryFilesKept, type SlowQueryEntry } from '../../src/observability/slow-query-log.js';
import { describeStatement, redactBody, statementCharsMax } from '../../src/observability/statement.js';

const silent = pino({ level: 'silent' });

function entry(durationMs: number, extra: Partial<SlowQueryEntry> = {}): Omit<SlowQueryEntry, 'id'> {
  return {
    requestId: `r${durationMs}`,
    ts: new Date(0).toISOString(),
    durationMs,
    method: 'GET',
    route: '/v1/tables/:table/rows/:key',
    statement: 'GET /v1/tables/t/rows/k',
    user: 'admin',
    rows: 1,
    status: 200,
    ...extra,
  };
}

t.test('entries are listed newest first, up to the limit, and the ring keeps only the newest maxStored', async (t) => {
  const log = new SlowQueryLog({ thresholdMs: 5, maxStored: 3, filePath: null, stdout: false, logger: silent });
  t.same(log.list(10), []);
  t.same(log.stats(), { count: 0, p50: null, p95: null, p99: null, max: null });
  for (const ms of [10, 20, 30, 40]) log.record(entry(ms));
  t.same(log.list(10).map((e) => e.durationMs), [40, 30, 20], 'the oldest went first');
  t.same(log.list(2).map((e) => e.durationMs), [40, 30]);
  const ids = log.list(3).map((e) => e.id);
  t.equal(new Set(ids).size, 3, 'every entry has its own id');
  t.equal(log.thresholdMs, 5);
});

t.test('stats are nearest-rank percentiles and the maximum over the stored entries', async (t) => {
  const log = new SlowQueryLog({ thresholdMs: 0, maxStored: 1000, filePath: null, stdout: false, logger: silent });
  for (let ms = 100; ms >= 1; ms--) log.record(entry(ms));
  t.same(log.stats(), { count: 100, p50: 50, p95: 95, p99: 99, max: 100 });
  log.clear();
  t.same(log.list(10), [], 'clear empties the ring');
  t.equal(log.stats().count, 0);
  log.record(entry(7));
  t.same(log.stats(), { count: 1, p50: 7, p95: 7, p99: 7, max: 7 });
});

t.test('the file gets one JSON line per entry and rotates by size, keeping a bounded number of older files', async (t) => {
  const dir = t.testdir();
  const file = path.join(dir, 'slow.jsonl');
  writeFileSync(file, '');
  const log = new SlowQueryLog({ thresholdMs: 0, maxStored: 10, filePath: file, stdout: false, logger: silent, fileBytesMax: 600 });
  for (let i = 1; i <= 40; i++) log.record(entry(i));
  await log.flush();
  const current = readFileSync(file, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as SlowQueryEntry);
  t.ok(current.length >= 1, 'the current file holds the newest lines');
  t.equal(current.at(-1)!.durationMs, 40, 'the last line is the last entry');
  t.ok(readFileSync(file).length <= 600, 'no file grows past its bound');
  for (let n = 1; n <= slowQueryFilesKept; n++) t.ok(existsSync(`${file}.${n}`), `${file}.${n} exists`);
  t.notOk(existsSync(`${file}.${slowQueryFilesKept + 1}`), 'older files are dropped');
  const previous = readFileSync(`${file}.1`, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as SlowQueryEntry);
  t.equal(previous.at(-1)!.durationMs + 1, current[0]!.durationMs, 'rotation loses no line between files');
});

t.test('a file that cannot be written leaves the ring working and says so once', async (t) => {
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(chunk.toString()), done()) }));
  const log = new SlowQueryLog({ thresholdMs: 0, maxStored: 10, filePath: path.join(t.testdir(), 'missing-dir', 'slow.jsonl'), stdout: false, logger });
  log.record(entry(1));
  log.record(entry(2));
  await log.flush();
  t.equal(log.list(10).length, 2);
  t.equal(lines.filter((line) => line.includes('slow-query file cannot be written')).length, 1);
});

t.test('with stdout, each entry is a log line even when the log level would drop info', async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'error' }, new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(JSON.parse(chunk.toString())), done()) }));
  const log = new SlowQueryLog({ thresholdMs: 0, maxStored: 10, filePath: null, stdout: true, logger });
  const recorded = log.record(entry(12));
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(lines.length, 1);
  t.equal(lines[0]!['msg'], 'slow query');
  t.same(lines[0]!['slowQuery'], recorded);
});

t.test('a statement is the method, the URL and, for queries and batches, the body', async (t) => {
  const base = { params: { table: 'users', key: 'ada@example.com' }, query: {}, redact: false };
  t.equal(
    describeStatement({ ...base, method: 'PUT', url: '/v1/tables/users/rows/ada%40example.com', route: '/v1/tables/:table/rows/:key', body: { secret: 1 } }),
    'PUT /v1/tables/users/rows/ada%40example.com',
    'a document body is not part of the statement',
  );
  const query = { table: 'users', where: { city: 'Paris' }, limit: 10 };
  t.equal(describeStatement({ ...base, params: {}, method: 'POST', url: '/v1/query', route: '/v1/query', body: query }), `POST /v1/query ${JSON.stringify(query)}`);
  const long = describeStatement({ ...base, params: {}, method: 'POST', url: '/v1/batch', route: '/v1/batch', body: { ops: [{ op: 'put', doc: { x: 'y'.repeat(10_000) } }] } });
  t.equal(long.length, statementCharsMax, 'a long statement is cut');
  t.ok(long.endsWith('…'));
});

t.test('redaction keeps names and replaces every literal by ?', async (t) => {
  const redacted = describeStatement({
    method: 'GET',
    url: '/v1/tables/users/rows/ada%40example.com?asOf=2026-01-01T00:00:00Z',
    route: '/v1/tables/:table/rows/:key',
    params: { table: 'users', key: 'ada@example.com' },
    query: { asOf: '2026-01-01T00:00:00Z' },
    body: undefined,
    redact: true,
  });
  t.equal(redacted, 'GET /v1/tables/users/rows/??asOf=?');
  t.notMatch(redacted, /ada|2026/);
  const query = {
    table: 'users',
    where: { city: 'Paris', age: { $gte: 30, $lt: 40 }, tags: { $in: ['a', 'b'] }, $or: [{ name: { $prefix: 'Ad' } }, { 'address.zip': 75001 }], email: { $exists: true }, $not: { vip: true } },
    select: ['name', 'city'],
    orderBy: [{ field: 'age', dir: 'desc' }],
    aggregates: { n: { $count: true }, total: { $sum: 'amount' } },
    groupBy: ['city'],
    asOf: 12,
    cursor: 'abc',
    limit: 5,
  };
  t.same(redactBody(query), {
    table: 'users',
    where: { city: '?', age: { $gte: '?', $lt: '?' }, tags: { $in: ['?', '?'] }, $or: [{ name: { $prefix: '?' } }, { 'address.zip': '?' }], email: { $exists: true }, $not: { vip: '?' } },
    select: ['name', 'city'],
    orderBy: [{ field: 'age', dir: 'desc' }],
    aggregates: { n: { $count: true }, total: { $sum: 'amount' } },
    groupBy: ['city'],
    asOf: '?',
    cursor: '?',
    limit: 5,
  });
  const batch = { ops: [{ op: 'put', table: 't', key: 'k1', doc: { pin: 1234 }, ifSeq: 4 }, { op: 'query', table: 't', where: { pin: 1234 } }] };
  const text = JSON.stringify(redactBody(batch));
  t.notMatch(text, /1234|k1/, 'no key, document or compared value is left');
  t.same(redactBody(batch), { ops: [{ op: 'put', table: 't', key: '?', doc: '?', ifSeq: '?' }, { op: 'query', table: 't', where: { pin: '?' } }] });
});

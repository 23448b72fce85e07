// The change feed through the real server (http-api.md §9): pages and their bounds, grants and system tables,
// Server-Sent Events framing and resumption, long-polls, streams and waits ending with the server, and the bound on
// a client that stops reading.

import t from 'tap';
import { basicAuth, sleep, startServer, type TestServer } from '../helpers/server.js';
import { commitOf, openSse } from '../helpers/sse.js';

async function table(server: TestServer, name: string): Promise<void> {
  const created = await server.request('POST', '/v1/tables', { body: { name, primaryKey: 'id' } });
  if (created.status !== 201) throw new Error(created.text);
}

async function put(server: TestServer, tableName: string, key: string, doc: object): Promise<number> {
  const written = await server.request('PUT', `/v1/tables/${tableName}/rows/${key}`, { body: doc });
  if (written.status !== 200 && written.status !== 201) throw new Error(written.text);
  return written.json.seq;
}

async function newestSeq(server: TestServer): Promise<number> {
  return (await server.request('GET', '/v1/admin/stats')).json.seq;
}

async function ok(server: TestServer, method: string, path: string, body?: unknown, auth?: string): Promise<any> {
  const answer = await server.request(method, path, { ...(body === undefined ? {} : { body }), ...(auth === undefined ? {} : { auth }) });
  if (answer.status < 200 || answer.status > 299) throw new Error(`${method} ${path}: ${answer.status} ${answer.text}`);
  return answer.json;
}

interface Commit {
  seq: number;
  ts: string;
  changes: Array<{ table: string; key: string; op: string; doc: any }>;
}

/** Every commit of the feed after `since`, following nextSince with pages of `limit`. */
async function feed(server: TestServer, query: string, since: number, limit = 1000, auth?: string): Promise<Commit[]> {
  const newest = await newestSeq(server);
  const commits: Commit[] = [];
  let at = since;
  while (at < newest) {
    const page = await ok(server, 'GET', `/v1/changes?${query}${query ? '&' : ''}since=${at}&limit=${limit}`, undefined, auth);
    if (page.commits.length > limit) throw new Error(`${page.commits.length} commits for limit ${limit}`);
    commits.push(...page.commits);
    if (page.nextSince <= at) throw new Error(`nextSince ${page.nextSince} does not move on from ${at}`);
    at = page.nextSince;
  }
  return commits;
}

t.test('a page: whole commits in seq order, documents and ts as history shows them, no system table, grants narrow it', async (t) => {
  const server = await startServer();
  t.teardown(() => server.kill());
  const start = await newestSeq(server);
  await table(server, 'alpha');
  await table(server, 'beta');
  await ok(server, 'POST', '/v1/admin/users', { username: 'ana', password: 'ana-password-1', roles: ['reader'], grants: ['alpha'] });
  const ana = basicAuth('ana', 'ana-password-1');
  const batch = await ok(server, 'POST', '/v1/batch', {
    ops: [
      { op: 'put', table: 'alpha', key: 'a1', doc: { n: 1 } },
      { op: 'put', table: 'alpha', key: 'a2', doc: { n: 2 } },
      { op: 'put', table: 'beta', key: 'b1', doc: { n: 3 } },
      { op: 'put', table: 'alpha', key: 'a3', doc: { n: 4 } },
    ],
  });
  const onlyBeta = await put(server, 'beta', 'b2', { n: 5 });
  // A login writes a token row (a system table) between the data commits.
  await ok(server, 'POST', '/v1/auth/token', { username: 'ana', password: 'ana-password-1' }, undefined);
  const patched = (await ok(server, 'PATCH', '/v1/tables/alpha/rows/a1', { extra: { deep: true } })).seq as number;
  const deleted = (await ok(server, 'DELETE', '/v1/tables/alpha/rows/a2')).seq as number;

  const all = await feed(server, '', start);
  t.same(all.map((c) => c.seq), [batch.seq, onlyBeta, patched, deleted], 'the data commits, in seq order, no system commit');
  t.notOk(all.some((c) => c.changes.some((change) => change.table.startsWith('_'))), 'no system table row');
  t.same(all[0]!.changes.map((c) => `${c.table}/${c.key}`), ['alpha/a1', 'alpha/a2', 'beta/b1', 'alpha/a3'], 'one event per commit, all its rows');
  t.same(all[2]!.changes, [{ table: 'alpha', key: 'a1', op: 'patch', doc: { id: 'a1', n: 1, extra: { deep: true } } }], 'a patch shows the whole new document');
  t.same(all[3]!.changes, [{ table: 'alpha', key: 'a2', op: 'delete', doc: null }], 'a delete shows doc null');
  const history = await ok(server, 'GET', '/v1/tables/alpha/rows/a1/history');
  t.same(history.versions.map((v: { seq: number; ts: string }) => [v.seq, v.ts]), [[batch.seq, all[0]!.ts], [patched, all[2]!.ts]], 'ts as history shows it');

  const one = await ok(server, 'GET', `/v1/changes?since=${start}&limit=1`);
  t.same(one.commits, [all[0]], 'limit 1 still gives the whole commit');
  t.equal(one.nextSince, batch.seq, 'nextSince is the last commit looked at');
  t.same(await feed(server, '', start, 1), all, 'pages of one commit, followed, give the same commits');
  const end = await ok(server, 'GET', `/v1/changes?since=${await newestSeq(server)}`);
  t.same(end, { commits: [], nextSince: await newestSeq(server) }, 'at the end: nothing, and nextSince stays');

  t.same(
    (await feed(server, 'tables=beta', start)).map((c) => [c.seq, c.changes.map((change) => change.key)]),
    [[batch.seq, ['b1']], [onlyBeta, ['b2']]],
    'tables= keeps its rows and the commits holding them',
  );
  t.same(
    (await feed(server, '', start, 1000, ana)).map((c) => [c.seq, c.changes.map((change) => change.key)]),
    [[batch.seq, ['a1', 'a2', 'a3']], [patched, ['a1']], [deleted, ['a2']]],
    'a reader granted alpha sees only alpha, and no commit left empty',
  );
  t.same(await feed(server, 'tables=alpha', start, 2, ana), await feed(server, '', start, 1000, ana), 'naming a granted table changes nothing');

  const code = async (path: string, options: { auth?: string | false; headers?: Record<string, string> } = {}): Promise<string> => {
    const answer = await server.request('GET', path, options);
    return `${answer.status} ${answer.json?.code ?? ''}`.trim();
  };
  t.equal(await code('/v1/changes?tables=beta', { auth: ana }), '403 forbidden', 'a named table without a grant');
  t.equal(await code('/v1/changes?tables=alpha,beta', { auth: ana }), '403 forbidden');
  t.equal(await code('/v1/changes?tables=gamma'), '404 table_not_found', 'an unknown table');
  t.equal(await code('/v1/changes?tables=_users'), '400 validation_failed', 'a system table');
  t.equal(await code('/v1/changes', { auth: false }), '401 unauthorized');
  for (const bad of ['since=-1', 'since=x', 'since=1.5', `since=${(await newestSeq(server)) + 1}`, 'limit=0', 'limit=1001', 'limit=x', 'waitMs=-1', 'waitMs=30001', 'waitMs=x', 'other=1']) {
    t.equal(await code(`/v1/changes?${bad}`), '400 validation_failed', bad);
  }
  t.equal(await code('/v1/changes', { headers: { 'last-event-id': 'x' } }), '400 validation_failed', 'a Last-Event-ID that is no seq');
  const resumed = await ok(server, 'GET', `/v1/changes?since=0`, undefined, undefined);
  const header = await server.request('GET', `/v1/changes?since=0`, { headers: { 'last-event-id': String(patched - 1) } });
  t.ok(resumed.commits.length > 2, 'since=0 starts at the beginning');
  t.same(header.json.commits.map((c: Commit) => c.seq), [patched, deleted], 'Last-Event-ID wins over since');
});

t.test('Server-Sent Events: a comment, then one change event per commit with its seq as id; Last-Event-ID wins; live commits follow', async (t) => {
  const server = await startServer();
  t.teardown(() => server.kill());
  await table(server, 'alpha');
  await table(server, 'beta');
  await ok(server, 'POST', '/v1/admin/users', { username: 'ana', password: 'ana-password-1', roles: ['reader'], grants: ['alpha'] });
  const start = await newestSeq(server);
  const first = await put(server, 'alpha', 'x', { v: 1 });
  await put(server, 'beta', 'y', { v: 1 });
  const third = await put(server, 'alpha', 'z', { v: 1 });

  const stream = await openSse(server.url, `/v1/changes?since=${start}`);
  t.teardown(() => stream.close());
  t.equal(stream.status, 200);
  t.match(stream.headers['content-type'], /^text\/event-stream/);
  t.equal(stream.headers['cache-control'], 'no-store');
  await stream.waitFor((events) => events.length >= 3);
  t.ok(stream.comments.length >= 1, 'a comment line opens the stream');
  const page = await feed(server, '', start);
  t.same(
    stream.events.map((e) => [e.id, e.event]),
    page.map((c) => [String(c.seq), 'change']),
    'one change event per commit, id its seq',
  );
  t.same(stream.events.map(commitOf), page, 'data: the commit as a page shows it');
  const live = await put(server, 'beta', 'live', { v: 2 });
  await stream.waitFor((events) => events.some((e) => e.id === String(live)));

  const narrowed = await openSse(server.url, `/v1/changes?since=0`, { auth: basicAuth('ana', 'ana-password-1'), headers: { 'last-event-id': String(first) } });
  t.teardown(() => narrowed.close());
  await put(server, 'beta', 'hidden', { v: 3 });
  const shown = await put(server, 'alpha', 'shown', { v: 3 });
  await narrowed.waitFor((events) => events.some((e) => e.id === String(shown)));
  t.same(narrowed.events.map((e) => Number(e.id)), [third, shown], 'Last-Event-ID wins over since, and grants narrow the stream');

  const bad = await openSse(server.url, `/v1/changes`, { headers: { 'last-event-id': 'nine' } });
  t.equal(bad.status, 400, 'a bad Last-Event-ID is a problem, not a stream');
  t.match(JSON.parse(bad.text), { code: 'validation_failed' });
  const beyond = await openSse(server.url, `/v1/changes?since=${(await newestSeq(server)) + 5}`);
  t.equal(beyond.status, 400, 'since beyond the newest seq');
  const forbidden = await openSse(server.url, `/v1/changes?tables=beta`, { auth: basicAuth('ana', 'ana-password-1') });
  t.equal(forbidden.status, 403);
  const anonymous = await openSse(server.url, `/v1/changes`, { auth: '' });
  t.equal(anonymous.status, 401);
  const head = await server.request('HEAD', '/v1/changes', { headers: { accept: 'text/event-stream' } });
  t.equal(head.status, 200, 'HEAD answers at once (the head of a page), never a stream without end');
});

t.test('long-poll: waitMs answers with the first commit the caller may see, and empty when none comes', async (t) => {
  const server = await startServer();
  t.teardown(() => server.kill());
  await table(server, 'alpha');
  await table(server, 'beta');
  await ok(server, 'POST', '/v1/admin/users', { username: 'ana', password: 'ana-password-1', roles: ['reader'], grants: ['alpha'] });
  const ana = basicAuth('ana', 'ana-password-1');
  const since = await newestSeq(server);

  const quiet = await ok(server, 'GET', `/v1/changes?since=${since}&waitMs=200`);
  // A commit the server makes to a system table meanwhile (hidden from the feed by default) may move nextSince on.
  t.same(quiet.commits, [], 'nothing came: an empty page');
  t.ok(quiet.nextSince >= since, 'nextSince never goes back');

  const polling = server.request('GET', `/v1/changes?since=${since}&waitMs=30000`, { auth: ana, timeoutMs: 40_000 });
  await sleep(200);
  // A commit the caller may not see does not end the wait; the next one it may see does.
  const unseen = await put(server, 'beta', 'unseen', { v: 1 });
  await sleep(200);
  const seen = await put(server, 'alpha', 'seen', { v: 2 });
  const answer = await polling;
  t.equal(answer.status, 200);
  t.same(answer.json.commits.map((c: Commit) => [c.seq, c.changes.map((change) => change.key)]), [[seen, ['seen']]], 'the visible commit, alone');
  t.equal(answer.json.nextSince, seen);

  const ready = await ok(server, 'GET', `/v1/changes?since=${since}&waitMs=30000`);
  t.same(ready.commits.map((c: Commit) => c.seq), [unseen, seen], 'commits already there answer at once');
});

t.test('SIGTERM ends open streams and waiting long-polls, and the server exits 0', async (t) => {
  const server = await startServer();
  t.teardown(() => server.kill());
  await table(server, 'items');
  const since = await newestSeq(server);
  const stream = await openSse(server.url, `/v1/changes?since=${since}`);
  t.teardown(() => stream.close());
  t.equal(stream.status, 200);
  await stream.waitFor(() => stream.comments.length > 0);
  const polling = server.request('GET', `/v1/changes?since=${since}&waitMs=30000`, { timeoutMs: 60_000 }).catch((error: Error) => error);
  // The long-poll is waiting (no commit comes) when the signal arrives.
  await sleep(300);
  t.equal(await server.stop(), 0, 'exit code 0');
  await stream.ended;
  const answer = await polling;
  if (answer instanceof Error) t.fail(`the long-poll got no answer: ${answer.message}`);
  else t.same({ status: answer.status, commits: answer.json.commits }, { status: 200, commits: [] }, 'the long-poll is answered, empty');
});

/** Runs `count` writes of `make(i)` with `concurrency` writers; answers their seqs. */
async function writeMany(server: TestServer, count: number, concurrency: number, make: (i: number) => { key: string; doc: object }): Promise<number[]> {
  const seqs: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < count; i = next++) {
        const { key, doc } = make(i);
        seqs.push(await put(server, 'alpha', key, doc));
      }
    }),
  );
  return seqs.sort((a, b) => a - b);
}

t.test('a client that stops reading is sent an error event naming where to resume, and closed; resuming there loses nothing', async (t) => {
  const bufferCommits = 20;
  const server = await startServer({ args: ['--changes-buffer-commits', String(bufferCommits)] });
  t.teardown(() => server.kill());
  await table(server, 'alpha');
  const since = await newestSeq(server);
  const stream = await openSse(server.url, `/v1/changes?since=${since}`);
  t.teardown(() => stream.close());
  await stream.waitFor(() => stream.comments.length > 0);
  stream.pause();
  // Far more than the socket buffers hold, so the server's side of the socket fills and the client falls behind.
  const pad = 'x'.repeat(48 * 1024);
  const written = await writeMany(server, 320, 8, (i) => ({ key: `k${i % 40}`, doc: { i, pad } }));
  t.equal((await server.request('GET', '/readyz')).status, 200, 'the server answers while the client lags');
  stream.resume();
  await stream.ended;

  const changes = stream.events.filter((e) => e.event === 'change');
  const errors = stream.events.filter((e) => e.event === 'error');
  t.equal(errors.length, 1, 'one error event');
  t.equal(stream.events.at(-1)?.event, 'error', 'the error event is the last thing sent');
  const error = JSON.parse(errors[0]!.data);
  t.match(error, { code: 'unavailable', lastEventId: Number, since: Number, detail: /--changes-buffer-commits/ });
  t.ok(changes.length < written.length, `the stream stopped early (${changes.length} of ${written.length} commits sent)`);
  t.same(changes.map((e) => Number(e.id)), written.slice(0, changes.length), 'what was sent is the commits in order, none skipped');
  t.ok(error.lastEventId >= Number(changes.at(-1)?.id ?? since), 'the error names a seq at or after the last event sent');

  // A client resuming where it was told gets the rest, once each.
  const resumed = await openSse(server.url, '/v1/changes', { headers: { 'last-event-id': String(error.lastEventId) } });
  t.teardown(() => resumed.close());
  await resumed.waitFor((events) => events.some((e) => Number(e.id) === written.at(-1)));
  t.same([...changes, ...resumed.events].map((e) => Number(e.id)), written, 'every commit exactly once, in order, across the two streams');
});

/** An acknowledged write: its commit's seq and the rows it wrote. */
interface Ack {
  seq: number;
  rows: Array<{ key: string; doc: object }>;
}

/**
 * One writer: autocommit PUTs, batches of three rows and transactions of two, in turn, each with fresh keys, until
 * the server dies under it. Answers what was acknowledged.
 */
async function feedWriter(server: TestServer, id: number): Promise<Ack[]> {
  const acks: Ack[] = [];
  const send = async (method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<any> => {
    const answer = await server.request(method, path, { ...(body === undefined ? {} : { body }), ...(headers ? { headers } : {}), timeoutMs: 5000 });
    if (answer.status < 200 || answer.status > 299) throw new Error(`unexpected ${answer.status}: ${answer.text}`);
    return answer.json;
  };
  for (let i = 0; ; i++) {
    const rows = Array.from({ length: [1, 3, 2][i % 3]! }, (_, j) => ({ key: `w${id}-${i}-${j}`, doc: { writer: id, i, j } }));
    try {
      if (i % 3 === 0) {
        acks.push({ seq: (await send('PUT', `/v1/tables/live/rows/${rows[0]!.key}`, rows[0]!.doc)).seq, rows });
      } else if (i % 3 === 1) {
        const ops = rows.map((row) => ({ op: 'put', table: 'live', key: row.key, doc: row.doc }));
        acks.push({ seq: (await send('POST', '/v1/batch', { ops })).seq, rows });
      } else {
        const tx = (await send('POST', '/v1/transactions', {})).id as string;
        for (const row of rows) await send('PUT', `/v1/tables/live/rows/${row.key}`, row.doc, { 'transaction-id': tx });
        acks.push({ seq: (await send('POST', `/v1/transactions/${tx}/commit`)).seq, rows });
      }
    } catch (error) {
      if (error instanceof Error && error.message.startsWith('unexpected')) throw error;
      return acks;
    }
  }
}

t.test('across a SIGKILL and restart, a stream resumed with Last-Event-ID has every acknowledged commit once, whole, in order', async (t) => {
  const first = await startServer();
  t.teardown(() => first.kill());
  await table(first, 'live');
  const since = await newestSeq(first);
  const before = await openSse(first.url, `/v1/changes?tables=live&since=${since}`);
  t.teardown(() => before.close());
  await before.waitFor(() => before.comments.length > 0);

  const writers = Array.from({ length: 16 }, (_, id) => feedWriter(first, id));
  await sleep(1500);
  await first.kill();
  const acks = (await Promise.all(writers)).flat();
  await before.ended;
  const seen = before.events.filter((e) => e.event === 'change');
  t.ok(acks.length > 16 && seen.length > 0, `writes were acknowledged (${acks.length}) and streamed (${seen.length}) before the kill`);

  const second = await startServer({ dataDir: first.dataDir });
  t.teardown(() => second.kill());
  // What the recovered feed holds: the end to wait for, and the truth to compare the streams with.
  const recovered = await feed(second, 'tables=live', since);
  const lastId = seen.at(-1)?.id ?? String(since);
  const after = await openSse(second.url, `/v1/changes?tables=live`, { headers: { 'last-event-id': lastId } });
  t.teardown(() => after.close());
  // One more write after the restart: the resumed stream goes on live.
  const fresh = await put(second, 'live', 'after-restart', { v: 1 });
  await after.waitFor((events) => events.some((e) => Number(e.id) === fresh));

  const streamed = [...seen, ...after.events.filter((e) => e.event === 'change')].map(commitOf);
  const seqs = streamed.map((c) => c.seq);
  t.ok(seqs.every((seq, i) => i === 0 || seq > seqs[i - 1]!), 'in seq order, nothing twice');
  t.same(streamed.slice(0, -1), recovered, 'the streams together are exactly the recovered feed: nothing missing, nothing extra');
  t.same(seen.map(commitOf), recovered.slice(0, seen.length), 'every event sent before the kill was durable');

  const bySeq = new Map(streamed.map((c) => [c.seq, c]));
  const wrong: string[] = [];
  for (const ack of acks) {
    const commit = bySeq.get(ack.seq);
    const expected = ack.rows.map((row) => ({ table: 'live', key: row.key, op: 'put', doc: { id: row.key, ...row.doc } }));
    if (commit === undefined) wrong.push(`seq ${ack.seq} missing`);
    else if (JSON.stringify(commit.changes) !== JSON.stringify(expected)) wrong.push(`seq ${ack.seq}: ${JSON.stringify(commit.changes)}`);
  }
  t.same(wrong, [], 'each acknowledged write is one event holding all its rows');
  t.comment(`${acks.length} acknowledged, ${seen.length} streamed before the kill, ${streamed.length} in all`);
});

// Change streams sent shared blocks (one text built and encoded for every stream with the same view at the same seq)
// through the real server: streams of different tables, positions and row policies each get exactly the commits a
// page shows them, once, in order; a stream that stops reading among others that share its blocks is still told where
// to resume and closed, and the others lose nothing.

import t from 'tap';
import { basicAuth, startServer, type TestServer } from '../helpers/server.js';
import { commitOf, openSse, type SseStream } from '../helpers/sse.js';

async function ok(server: TestServer, method: string, path: string, body?: unknown, auth?: string): Promise<any> {
  const answer = await server.request(method, path, { ...(body === undefined ? {} : { body }), ...(auth === undefined ? {} : { auth }) });
  if (answer.status < 200 || answer.status > 299) throw new Error(`${method} ${path}: ${answer.status} ${answer.text}`);
  return answer.json;
}

async function newestSeq(server: TestServer): Promise<number> {
  return (await ok(server, 'GET', '/v1/admin/stats')).seq;
}

/** Every commit after `since` a page with `query` shows `auth`'s caller, following nextSince up to the newest seq. */
async function pages(server: TestServer, query: string, since: number, auth?: string): Promise<unknown[]> {
  const newest = await newestSeq(server);
  const commits: unknown[] = [];
  for (let at = since; at < newest; ) {
    const page = await ok(server, 'GET', `/v1/changes?${query}${query ? '&' : ''}since=${at}&limit=1000`, undefined, auth);
    commits.push(...page.commits);
    at = page.nextSince;
  }
  return commits;
}

/** Runs `count` calls of `write(i)`, `concurrency` at a time, so group commits (and flush windows) hold several. */
async function concurrently(count: number, concurrency: number, write: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < count; i = next++) await write(i);
    }),
  );
}

/** The change events of `stream` once it has the commit `last` (or, with none to wait for, what it has). */
async function changesUpTo(stream: SseStream, last: number | undefined): Promise<unknown[]> {
  if (last !== undefined) await stream.waitFor((events) => events.some((e) => Number(e.id) === last), 60_000);
  return stream.events.filter((e) => e.event === 'change').map(commitOf);
}

t.test('streams of several tables and positions, many sharing blocks, get every commit they see once, in order', async (t) => {
  const server = await startServer();
  t.teardown(() => server.kill());
  await ok(server, 'POST', '/v1/tables', { name: 'alpha', primaryKey: 'id' });
  await ok(server, 'POST', '/v1/tables', { name: 'beta', primaryKey: 'id' });
  const early = await newestSeq(server);
  await concurrently(30, 6, (i) => ok(server, 'PUT', `/v1/tables/${i % 2 ? 'alpha' : 'beta'}/rows/early${i}`, { i }));
  const now = await newestSeq(server);

  const open = async (query: string, since: number): Promise<SseStream> => {
    const stream = await openSse(server.url, `/v1/changes${query ? `?${query}` : ''}`, { headers: { 'last-event-id': String(since) } });
    t.teardown(() => stream.close());
    return stream;
  };
  const streams: Array<{ query: string; since: number; stream: SseStream }> = [];
  // Groups that share: three on alpha, two on {alpha, beta} named in either order, two on every table; and streams
  // alone: one on beta, and ones starting far back that catch up on their own before they join their group.
  for (const [query, since] of [
    ['tables=alpha', now],
    ['tables=alpha', now],
    ['tables=alpha', now],
    ['tables=alpha,beta', now],
    ['tables=beta,alpha', now],
    ['', now],
    ['', now],
    ['tables=beta', now],
    ['tables=alpha', early],
    ['', early],
  ] as const) {
    streams.push({ query, since, stream: await open(query, since) });
  }
  for (const { stream } of streams) await stream.waitFor(() => stream.comments.length > 0);

  // Small rows, batches across both tables, and large ones: several commits of one flush pass the block bound, so a
  // shared flush sends more than one block.
  const pad = 'p'.repeat(40 * 1024);
  await concurrently(240, 12, (i) => {
    if (i % 5 === 0) return ok(server, 'POST', '/v1/batch', { ops: [{ op: 'put', table: 'alpha', key: `b${i}`, doc: { i } }, { op: 'put', table: 'beta', key: `b${i}`, doc: { i } }] });
    if (i % 7 === 0) return ok(server, 'PUT', `/v1/tables/alpha/rows/big${i}`, { i, pad });
    if (i % 11 === 0) return ok(server, 'DELETE', `/v1/tables/beta/rows/early${i % 30 === 0 ? 0 : 2}`).catch(() => undefined);
    return ok(server, 'PUT', `/v1/tables/${i % 2 ? 'alpha' : 'beta'}/rows/k${i}`, { i });
  });

  for (const { query, since, stream } of streams) {
    const expected = (await pages(server, query, since)) as Array<{ seq: number }>;
    t.ok(expected.length > 0, `${query || 'every table'} from ${since === early ? 'far back' : 'now'}: commits to see`);
    const received = await changesUpTo(stream, expected.at(-1)?.seq);
    t.same(received, expected, `${query || 'every table'} from ${since === early ? 'far back' : 'now'}: every commit once, in order, as a page shows it`);
  }
});

t.test('streams under row policies see only the rows their caller may read, however many share a block', async (t) => {
  const server = await startServer();
  t.teardown(() => server.kill());
  for (const username of ['alice', 'bob']) await ok(server, 'POST', '/v1/admin/users', { username, password: `${username}-password`, roles: ['writer'] });
  const alice = basicAuth('alice', 'alice-password');
  const bob = basicAuth('bob', 'bob-password');
  await ok(server, 'POST', '/v1/tables', { name: 'notes', primaryKey: 'id' });
  await ok(server, 'POST', '/v1/tables', { name: 'open', primaryKey: 'id' });
  await ok(server, 'PUT', '/v1/tables/notes/policies/own', { appliesTo: { users: ['alice', 'bob'] }, read: { owner: { $user: 'name' } } });
  const since = await newestSeq(server);

  const streams: Array<{ name: string; query: string; auth: string | undefined; stream: SseStream }> = [];
  for (const [name, query, auth] of [
    ['alice', 'tables=notes', alice],
    ['alice again', 'tables=notes', alice],
    ['alice, both tables', 'tables=notes,open', alice],
    ['bob', 'tables=notes', bob],
    ['bob, both tables', 'tables=notes,open', bob],
    ['admin', 'tables=notes', undefined],
    ['admin again', 'tables=notes', undefined],
    ['alice, no policy', 'tables=open', alice],
    ['bob, no policy', 'tables=open', bob],
  ] as const) {
    const stream = await openSse(server.url, `/v1/changes?${query}&since=${since}`, auth === undefined ? {} : { auth });
    t.teardown(() => stream.close());
    streams.push({ name, query, auth, stream });
  }
  for (const { stream } of streams) await stream.waitFor(() => stream.comments.length > 0);

  await concurrently(150, 10, (i) => {
    const owner = i % 3 === 0 ? 'bob' : 'alice';
    if (i % 4 === 0) {
      return ok(server, 'POST', '/v1/batch', {
        ops: [
          { op: 'put', table: 'notes', key: `n${i}`, doc: { owner } },
          { op: 'put', table: 'open', key: `o${i}`, doc: { owner } },
        ],
      });
    }
    return ok(server, 'PUT', `/v1/tables/${i % 5 === 1 ? 'open' : 'notes'}/rows/r${i}`, { owner });
  });

  for (const { name, query, auth, stream } of streams) {
    const expected = (await pages(server, query, since, auth)) as Array<{ seq: number; changes: Array<{ table: string; doc: { owner: string } }> }>;
    const received = (await changesUpTo(stream, expected.at(-1)?.seq)) as typeof expected;
    t.same(received, expected, `${name}: every commit it may see once, in order, as a page shows it`);
    const owners = new Set(received.flatMap((c) => c.changes.filter((change) => change.table === 'notes').map((change) => change.doc.owner)));
    if (name.startsWith('alice')) t.notOk(owners.has('bob'), `${name}: none of bob's notes`);
    if (name.startsWith('bob')) t.notOk(owners.has('alice'), `${name}: none of alice's notes`);
    if (name.startsWith('admin')) t.same([...owners].sort(), ['alice', 'bob'], `${name}: every note`);
  }
});

t.test('a client that stops reading among streams sharing its blocks is closed with an error event; the others lose nothing', async (t) => {
  const server = await startServer({ args: ['--changes-buffer-commits', '20'] });
  t.teardown(() => server.kill());
  await ok(server, 'POST', '/v1/tables', { name: 'alpha', primaryKey: 'id' });
  const since = await newestSeq(server);
  const streams: SseStream[] = [];
  for (let i = 0; i < 4; i++) {
    const stream = await openSse(server.url, `/v1/changes?tables=alpha&since=${since}`);
    t.teardown(() => stream.close());
    await stream.waitFor(() => stream.comments.length > 0);
    streams.push(stream);
  }
  const [slow, ...readers] = streams as [SseStream, ...SseStream[]];
  slow.pause();
  // Far more than the socket buffers hold, so the slow client's side of its socket fills and it falls behind.
  const pad = 'x'.repeat(48 * 1024);
  const seqs: number[] = [];
  await concurrently(320, 8, async (i) => seqs.push((await ok(server, 'PUT', `/v1/tables/alpha/rows/k${i % 40}`, { i, pad })).seq));
  seqs.sort((a, b) => a - b);
  slow.resume();
  await slow.ended;

  const changes = slow.events.filter((e) => e.event === 'change');
  const error = slow.events.at(-1);
  t.equal(error?.event, 'error', 'the slow client is sent an error event, last');
  t.match(JSON.parse(error!.data), { code: 'unavailable', lastEventId: Number, detail: /--changes-buffer-commits/ });
  t.ok(changes.length < seqs.length, `it stopped early (${changes.length} of ${seqs.length} commits)`);
  t.same(changes.map((e) => Number(e.id)), seqs.slice(0, changes.length), 'what it was sent is the commits in order, none skipped');
  for (const [i, reader] of readers.entries()) {
    const received = await changesUpTo(reader, seqs.at(-1));
    t.same(received.map((c) => (c as { seq: number }).seq), seqs, `reader ${i + 1}: every commit once, in order`);
  }
});

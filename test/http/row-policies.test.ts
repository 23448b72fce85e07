// Row policies (http-api.md §8) against the real server: every read path (GET, pages, asOf before the policy
// existed, key history, history queries, aggregates, cursors edited by hand, explain, reads inside transactions and
// batches) shows a caller only what a policy that applies to them admits; writes the policy refuses are 403 and
// write nothing; a hidden row's patch or delete is 404 like a missing one; {"$user":"name"}; policies survive
// restarts and checkpoints, go with a dropped table, and every change is audited.

import t, { type Test } from 'tap';
import { basicAuth, startServer, type Response, type TestServer } from '../helpers/server.js';

let server: TestServer;
const as = (username: string): string => basicAuth(username, `${username}-password`);
const alice = as('alice');
const bob = as('bob');
const wade = as('wade');
const rita = as('rita');

/** Seqs the tests read the past at. */
const seqs = { n4WhileBobs: 0, beforePolicies: 0 };

const ownPolicy = { appliesTo: { users: ['alice', 'bob'] }, read: { owner: { $user: 'name' } }, write: { owner: { $user: 'name' } } };
const publicPolicy = { appliesTo: { roles: ['reader'] }, read: { public: true } };

async function ok(response: Promise<Response>, status = 200): Promise<Response> {
  const res = await response;
  if (res.status !== status) throw new Error(`expected ${status}, got ${res.status}: ${res.text}`);
  return res;
}

function put(table: string, key: string, doc: object, auth?: string): Promise<Response> {
  return server.request('PUT', `/v1/tables/${table}/rows/${key}`, { body: doc, ...(auth ? { auth } : {}) });
}

function query(body: object, auth: string, headers?: Record<string, string>): Promise<Response> {
  return server.request('POST', '/v1/query', { body, auth, ...(headers ? { headers } : {}) });
}

function keysOf(rows: Array<{ id?: string; key?: string }>): string[] {
  return rows.map((row) => row.key ?? row.id!);
}

/** Every row of a listing, following nextCursor with `limit` rows a page. */
async function listAll(table: string, auth: string, params = ''): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | null = null;
  do {
    const url: string = `/v1/tables/${table}/rows?limit=1${params}${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`;
    const page = await ok(server.request('GET', url, { auth }));
    keys.push(...keysOf(page.json.rows));
    cursor = page.json.nextCursor;
  } while (cursor !== null);
  return keys;
}

t.before(async () => {
  server = await startServer();
  for (const [username, role] of [['alice', 'writer'], ['bob', 'writer'], ['wade', 'writer'], ['rita', 'reader']] as const) {
    await ok(server.request('POST', '/v1/admin/users', { body: { username, password: `${username}-password`, roles: [role] } }), 201);
  }
  await ok(server.request('POST', '/v1/tables', { body: { name: 'notes', primaryKey: 'id', indexes: ['owner'] } }), 201);
  await ok(server.request('POST', '/v1/tables', { body: { name: 'open', primaryKey: 'id' } }), 201);
  await ok(put('open', 'o1', { owner: 'bob' }), 201);
  await ok(put('notes', 'n1', { owner: 'alice', text: 'one' }), 201);
  await ok(put('notes', 'n2', { owner: 'bob', text: 'two' }), 201);
  await ok(put('notes', 'n3', { owner: 'alice', text: 'three' }), 201);
  seqs.n4WhileBobs = (await ok(put('notes', 'n4', { owner: 'bob', text: 'four' }), 201)).json.seq;
  await ok(server.request('PATCH', '/v1/tables/notes/rows/n4', { body: { owner: 'alice' } }));
  await ok(put('notes', 'n5', { owner: 'alice', text: 'five' }), 201);
  await ok(server.request('DELETE', '/v1/tables/notes/rows/n5'));
  await ok(put('notes', 'n6', { owner: 'alice', text: 'six' }), 201);
  await ok(server.request('PATCH', '/v1/tables/notes/rows/n6', { body: { owner: 'bob' } }));
  await ok(server.request('DELETE', '/v1/tables/notes/rows/n6'));
  seqs.beforePolicies = (await ok(put('notes', 'n7', { owner: 'bob', public: true }), 201)).json.seq;
  await ok(server.request('PUT', '/v1/tables/notes/policies/own', { body: ownPolicy }), 201);
  await ok(server.request('PUT', '/v1/tables/notes/policies/public', { body: publicPolicy }), 201);
});

t.teardown(() => server?.kill());

t.test('GET shows a hidden row exactly as a missing one: 404 row_not_found', async (t) => {
  t.same((await ok(server.request('GET', '/v1/tables/notes/rows/n1', { auth: alice }))).json, { id: 'n1', owner: 'alice', text: 'one' });
  const hidden = await server.request('GET', '/v1/tables/notes/rows/n2', { auth: alice });
  const missing = await server.request('GET', '/v1/tables/notes/rows/nx', { auth: alice });
  t.equal(hidden.status, 404);
  t.equal(hidden.json.code, 'row_not_found');
  t.same({ ...hidden.json, detail: hidden.json.detail.replace('n2', 'K') }, { ...missing.json, detail: missing.json.detail.replace('nx', 'K') });
  t.equal(hidden.headers.etag, undefined, 'no ETag names the hidden version');
  t.equal((await server.request('GET', '/v1/tables/notes/rows/n2', { auth: bob })).status, 200, 'bob reads his own row');
  t.equal((await server.request('GET', '/v1/tables/notes/rows/n2')).status, 200, 'an admin is never restricted');
});

t.test('pages list only the rows a policy admits, cursor after cursor', async (t) => {
  t.same(await listAll('notes', alice), ['n1', 'n3', 'n4']);
  t.same(await listAll('notes', bob), ['n2', 'n7']);
  t.same(await listAll('notes', rita), ['n7'], 'a reader sees the rows the role policy admits');
  t.same(await listAll('notes', wade), [], 'a writer no policy applies to sees no rows');
  t.same(await listAll('notes', server.auth), ['n1', 'n2', 'n3', 'n4', 'n7']);
  t.same(await listAll('open', alice), ['o1'], 'a table without policies behaves as before');
});

t.test('asOf cannot escape a policy, not even before the policy existed', async (t) => {
  const atBobs = `?asOf=${seqs.n4WhileBobs}`;
  t.equal((await server.request('GET', `/v1/tables/notes/rows/n4${atBobs}`)).status, 200, 'the admin reads it then');
  t.equal((await server.request('GET', `/v1/tables/notes/rows/n4${atBobs}`, { auth: alice })).json?.code, 'row_not_found');
  t.equal((await server.request('GET', `/v1/tables/notes/rows/n4${atBobs}`, { auth: bob })).status, 200, 'bob owned it then');
  t.same(await listAll('notes', alice, `&asOf=${seqs.beforePolicies}`), ['n1', 'n3', 'n4']);
  t.same(await listAll('notes', wade, `&asOf=${seqs.beforePolicies}`), []);
  const past = await ok(query({ table: 'notes', asOf: seqs.n4WhileBobs }, alice));
  t.same(keysOf(past.json.rows), ['n1', 'n3']);
});

t.test("a key's history keeps only the versions a policy admits; a delete shows when the version before it does", async (t) => {
  const history = async (key: string, auth: string) => server.request('GET', `/v1/tables/notes/rows/${key}/history`, { auth });
  const n4 = await ok(history('n4', alice));
  t.same(n4.json.versions.map((v: any) => [v.op, v.doc?.owner ?? null]), [['patch', 'alice']], 'the put while it was bob\'s is left out');
  const n5 = await ok(history('n5', alice));
  t.same(n5.json.versions.map((v: any) => v.op), ['put', 'delete']);
  const n6 = await ok(history('n6', alice));
  t.same(n6.json.versions.map((v: any) => [v.op, v.doc?.owner ?? null]), [['put', 'alice']], 'the patch to bob and the delete after it are left out');
  const n6bob = await ok(history('n6', bob));
  t.same(n6bob.json.versions.map((v: any) => v.op), ['patch', 'delete']);
  const hidden = await history('n2', alice);
  const never = await history('nx', alice);
  t.equal(hidden.status, 404);
  t.same({ ...hidden.json, detail: hidden.json.detail.replace('n2', 'K') }, { ...never.json, detail: never.json.detail.replace('nx', 'K') }, 'as for a key never written');
});

t.test('"history": true queries answer only admitted versions', async (t) => {
  const all = await ok(query({ table: 'notes', history: true, limit: 1000 }, alice));
  t.same(
    all.json.rows.map((v: any) => `${v.key}:${v.op}:${v.doc?.owner ?? '-'}`),
    ['n1:put:alice', 'n3:put:alice', 'n4:patch:alice', 'n5:put:alice', 'n6:put:alice'],
    'deletes never match a history query; the patch of n6 to bob is left out',
  );
  const bobs = await ok(query({ table: 'notes', history: true, where: { owner: 'bob' } }, alice));
  t.same(bobs.json.rows, [], 'asking for bob\'s versions finds none');
  const wades = await ok(query({ table: 'notes', history: true }, wade));
  t.same(wades.json.rows, []);
});

t.test('queries, aggregates and group counts see only admitted rows', async (t) => {
  const where = await ok(query({ table: 'notes', where: { owner: 'bob' } }, alice));
  t.same(where.json.rows, [], 'an index lookup on a hidden value finds nothing');
  const count = await ok(query({ table: 'notes', aggregates: { n: { $count: true } } }, alice));
  t.same(count.json.rows, [{ n: 3 }]);
  const groups = await ok(query({ table: 'notes', groupBy: ['owner'], aggregates: { n: { $count: true } } }, bob));
  t.same(groups.json.rows, [{ owner: 'bob', n: 2 }]);
  const none = await ok(query({ table: 'notes', aggregates: { n: { $count: true } } }, wade));
  t.same(none.json.rows, [{ n: 0 }]);
  const ordered = await ok(query({ table: 'notes', orderBy: [{ field: 'text', dir: 'desc' }], select: ['id'] }, alice));
  t.same(ordered.json.rows, [{ id: 'n3' }, { id: 'n1' }, { id: 'n4' }]);
  const byKey = await ok(query({ table: 'notes', where: { id: { $in: ['n1', 'n2'] } } }, alice));
  t.same(keysOf(byKey.json.rows), ['n1'], 'a primary-key lookup of a hidden key finds nothing');
});

t.test('a cursor edited by hand reads no hidden row', async (t) => {
  const first = await ok(server.request('GET', '/v1/tables/notes/rows?limit=1', { auth: alice }));
  const body = JSON.parse(Buffer.from(first.json.nextCursor, 'base64url').toString('utf8'));
  for (const edit of [
    { ...body, p: { t: 'k', k: '' } },
    { ...body, s: seqs.n4WhileBobs, p: { t: 'k', k: '' } },
    { ...body, s: 1, p: { t: 'k', k: 'n1' } },
  ]) {
    const cursor = Buffer.from(JSON.stringify(edit)).toString('base64url');
    const page = await server.request('GET', `/v1/tables/notes/rows?limit=100&cursor=${cursor}`, { auth: alice });
    t.equal(page.status, 200, page.text);
    t.ok(page.json.rows.every((row: any) => row.owner === 'alice'), `only alice's rows after ${JSON.stringify(edit.p)} at seq ${edit.s}`);
  }
  const adminCursor = (await ok(server.request('GET', '/v1/tables/notes/rows?limit=1'))).json.nextCursor;
  const replayed = await ok(server.request('GET', `/v1/tables/notes/rows?limit=100&cursor=${adminCursor}`, { auth: alice }));
  t.same(keysOf(replayed.json.rows), ['n3', 'n4'], "an admin's cursor reads through the caller's policy");
  const history = await ok(query({ table: 'notes', history: true, limit: 1 }, alice));
  const versionBody = JSON.parse(Buffer.from(history.json.nextCursor, 'base64url').toString('utf8'));
  const rewound = Buffer.from(JSON.stringify({ ...versionBody, p: { t: 'v', a: null, k: 'n1', q: 0 } })).toString('base64url');
  const rest = await ok(query({ table: 'notes', history: true, limit: 1000, cursor: rewound }, alice));
  t.ok(rest.json.rows.every((v: any) => v.doc === null || v.doc.owner === 'alice'), 'a rewound history cursor too');
});

t.test('explain honours the policy: an index estimate does not count hidden rows', async (t) => {
  const explain = (where: object, auth: string) => ok(server.request('POST', '/v1/query/explain', { body: { table: 'notes', where }, auth }));
  const forBob = await explain({ owner: 'bob' }, alice);
  const forAlice = await explain({ owner: 'alice' }, alice);
  const forNobody = await explain({ owner: 'nobody' }, alice);
  t.equal(forBob.json.plan.access, 'index');
  t.equal(forBob.json.plan.estimatedRows, forNobody.json.plan.estimatedRows, 'a value only hidden rows hold estimates like an absent one');
  t.equal(forBob.json.plan.estimatedRows, forAlice.json.plan.estimatedRows);
  const admin = await ok(server.request('POST', '/v1/query/explain', { body: { table: 'notes', where: { owner: 'nobody' } } }));
  t.equal(admin.json.plan.estimatedRows, 0, "the admin's plan keeps the index's own estimate");
});

t.test('reads inside transactions and batches honour the policy', async (t) => {
  const begun = await ok(server.request('POST', '/v1/transactions', { body: { isolation: 'repeatable_read' }, auth: alice }), 201);
  const tx = { 'transaction-id': begun.json.id };
  t.equal((await server.request('GET', '/v1/tables/notes/rows/n2', { auth: alice, headers: tx })).json?.code, 'row_not_found');
  t.equal((await server.request('GET', `/v1/tables/notes/rows/n4?asOf=${seqs.n4WhileBobs}`, { auth: alice, headers: tx })).json?.code, 'row_not_found');
  t.same(keysOf((await ok(query({ table: 'notes' }, alice, tx))).json.rows), ['n1', 'n3', 'n4']);
  t.same(keysOf((await ok(server.request('GET', '/v1/tables/notes/rows', { auth: alice, headers: tx }))).json.rows), ['n1', 'n3', 'n4']);
  t.equal((await server.request('GET', '/v1/tables/notes/rows/n2/history', { auth: alice, headers: tx })).status, 404);
  // Its own pending write shows through its overlay; one the policy refuses is never pending.
  t.equal((await server.request('PUT', '/v1/tables/notes/rows/t1', { body: { owner: 'alice' }, auth: alice, headers: tx })).status, 201);
  t.same(keysOf((await ok(query({ table: 'notes' }, alice, tx))).json.rows), ['n1', 'n3', 'n4', 't1']);
  t.equal((await server.request('PUT', '/v1/tables/notes/rows/t2', { body: { owner: 'bob' }, auth: alice, headers: tx })).json?.code, 'forbidden');
  t.ok((await ok(server.request('POST', `/v1/transactions/${begun.json.id}/commit`, { auth: alice }))).json.seq > 0, 'commits its allowed write');
  t.equal((await server.request('GET', '/v1/tables/notes/rows/t2')).status, 404, 'the refused write left nothing');

  const batch = await ok(
    server.request('POST', '/v1/batch', {
      auth: alice,
      body: { ops: [{ op: 'get', table: 'notes', key: 'n1' }, { op: 'query', table: 'notes', where: { owner: { $ne: 'alice' } } }] },
    }),
  );
  t.same(batch.json.results[1].rows, [], "a batch's query sees no hidden row");
  const hiddenGet = await server.request('POST', '/v1/batch', { auth: alice, body: { ops: [{ op: 'get', table: 'notes', key: 'n2' }] } });
  t.match(hiddenGet.json, { code: 'row_not_found', opIndex: 0 });
});

t.test('a read_uncommitted transaction does not see hidden uncommitted writes either', async (t) => {
  const bobs = await ok(server.request('POST', '/v1/transactions', { body: { isolation: 'read_committed' }, auth: bob }), 201);
  await ok(server.request('PUT', '/v1/tables/notes/rows/u1', { body: { owner: 'bob' }, auth: bob, headers: { 'transaction-id': bobs.json.id } }), 201);
  const dirty = await ok(server.request('POST', '/v1/transactions', { body: { isolation: 'read_uncommitted' }, auth: alice }), 201);
  const tx = { 'transaction-id': dirty.json.id };
  t.equal((await server.request('GET', '/v1/tables/notes/rows/u1', { auth: alice, headers: tx })).status, 404);
  t.notOk(keysOf((await ok(query({ table: 'notes' }, alice, tx))).json.rows).includes('u1'));
  await ok(server.request('POST', `/v1/transactions/${dirty.json.id}/rollback`, { auth: alice }));
  await ok(server.request('POST', `/v1/transactions/${bobs.json.id}/rollback`, { auth: bob }));
});

t.test('writes the policy refuses are 403 forbidden and write nothing', async (t) => {
  const seqBefore = (await ok(server.request('GET', '/v1/admin/stats'))).json.seq;
  const refused = [
    await put('notes', 'w1', { owner: 'bob' }, alice),
    await server.request('PATCH', '/v1/tables/notes/rows/n1', { body: { owner: 'bob' }, auth: alice }),
    await put('notes', 'n2', { owner: 'alice', text: 'taken' }, alice),
    await put('notes', 'w2', { text: 'no owner' }, alice),
    await put('notes', 'w3', { owner: 'alice' }, wade),
    await put('notes', 'w4', { owner: 'rita', public: true }, rita),
  ];
  for (const res of refused) t.equal(res.json?.code, 'forbidden', res.text);
  const batch = await server.request('POST', '/v1/batch', {
    auth: alice,
    body: { ops: [{ op: 'put', table: 'notes', key: 'w5', doc: { owner: 'alice' } }, { op: 'put', table: 'notes', key: 'w6', doc: { owner: 'bob' } }] },
  });
  t.match(batch.json, { code: 'forbidden', opIndex: 1 });
  // The 403s are audited, and the audit chain's head may be recorded in its system table meanwhile: that commit is
  // the server's own, so what is checked is that no commit touched the table.
  t.same((await ok(server.request('GET', `/v1/changes?tables=notes&since=${seqBefore}`))).json.commits, [], 'no commit happened');
  t.same((await ok(server.request('GET', '/v1/tables/notes/rows/n1'))).json.owner, 'alice');
  t.same((await ok(server.request('GET', '/v1/tables/notes/rows/n2'))).json.text, 'two');
  for (const key of ['w1', 'w2', 'w3', 'w4', 'w5', 'w6']) t.equal((await server.request('GET', `/v1/tables/notes/rows/${key}`)).status, 404, `${key} not written`);
  const allowed = await put('notes', 'w7', { owner: 'alice', text: 'ok' }, alice);
  t.equal(allowed.status, 201, 'a write both sides of the policy admit goes through');
  t.equal((await server.request('PATCH', '/v1/tables/notes/rows/w7', { body: { text: 'still mine' }, auth: alice })).status, 200);
  t.equal((await server.request('DELETE', '/v1/tables/notes/rows/w7', { auth: alice })).status, 200);
});

t.test("a patch or delete of a row the caller cannot read is 404, as for a missing key", async (t) => {
  for (const [method, body] of [['PATCH', { text: 'x' }], ['DELETE', undefined]] as const) {
    const hidden = await server.request(method, '/v1/tables/notes/rows/n2', { auth: alice, ...(body ? { body } : {}) });
    t.equal(hidden.status, 404, `${method} of a hidden row`);
    t.equal(hidden.json.code, 'row_not_found');
    const conditional = await server.request(method, '/v1/tables/notes/rows/n2', { auth: alice, headers: { 'if-match': '"1"' }, ...(body ? { body } : {}) });
    t.equal(conditional.status, 404, `${method} with If-Match reveals no currentSeq`);
  }
  t.equal((await ok(server.request('GET', '/v1/tables/notes/rows/n2'))).json.text, 'two', 'unchanged');
});

t.test('{"$user":"name"} is refused in ordinary queries', async (t) => {
  for (const body of [
    { table: 'notes', where: { owner: { $user: 'name' } } },
    { table: 'notes', where: { $user: 'name' } },
    { table: 'notes', where: { $or: [{ owner: { $not: { $user: 'name' } } }] } },
  ]) {
    const res = await query(body, alice);
    t.equal(res.status, 400, JSON.stringify(body.where));
    t.equal(res.json.code, 'validation_failed');
  }
  t.equal((await server.request('POST', '/v1/query/explain', { body: { table: 'notes', where: { owner: { $user: 'name' } } }, auth: alice })).status, 400);
});

t.test('the policy routes check what they are given', async (t) => {
  const putPolicy = (table: string, name: string, body: unknown) => server.request('PUT', `/v1/tables/${table}/policies/${name}`, { body });
  const bad: Array<[string, string, unknown, number, string]> = [
    ['notes', 'p1', { appliesTo: {} }, 400, 'validation_failed'],
    ['notes', 'p1', { appliesTo: { roles: ['admin'] } }, 400, 'validation_failed'],
    ['notes', 'p1', { appliesTo: { users: ['no spaces'] } }, 400, 'validation_failed'],
    ['notes', 'p1', { appliesTo: { roles: ['reader'] }, read: { owner: { $bogus: 1 } } }, 400, 'validation_failed'],
    ['notes', 'p1', { appliesTo: { roles: ['reader'] }, read: { owner: { $user: 'id' } } }, 400, 'validation_failed'],
    ['notes', 'p1', { appliesTo: { roles: ['reader'] }, read: { $user: 'name' } }, 400, 'validation_failed'],
    ['notes', 'p1', { appliesTo: { roles: ['reader'] }, write: { $or: [] } }, 400, 'validation_failed'],
    ['notes', 'p1', { appliesTo: { roles: ['reader'] }, read: [] }, 400, 'validation_failed'],
    ['notes', 'p1', { appliesTo: { roles: ['reader'] }, extra: true }, 400, 'validation_failed'],
    ['notes', 'p1', { read: {} }, 400, 'validation_failed'],
    ['notes', 'bad-name', { appliesTo: { roles: ['reader'] } }, 400, 'validation_failed'],
    ['notes', '1st', { appliesTo: { roles: ['reader'] } }, 400, 'validation_failed'],
    ['nope', 'p1', { appliesTo: { roles: ['reader'] } }, 404, 'table_not_found'],
    ['_users', 'p1', { appliesTo: { roles: ['reader'] } }, 400, 'validation_failed'],
  ];
  for (const [table, name, body, status, code] of bad) {
    const res = await putPolicy(table, name, body);
    t.equal(res.status, status, `${table}/${name} ${JSON.stringify(body)}: ${res.text.slice(0, 160)}`);
    t.equal(res.json?.code, code);
  }
  const misuse = await putPolicy('notes', 'p1', { appliesTo: { roles: ['reader'] }, read: { a: { $user: 'id' } } });
  t.match(misuse.json.errors, [{ instancePath: '/read/a/$user' }], 'the problem is named by where it is');
  t.same((await ok(server.request('GET', '/v1/tables/notes/policies'))).json.policies.map((p: any) => p.name), ['own', 'public'], 'nothing was stored');
  t.equal((await server.request('GET', '/v1/tables/nope/policies')).json.code, 'table_not_found');
  t.equal((await server.request('DELETE', '/v1/tables/notes/policies/absent')).json.code, 'not_found');
  t.equal((await server.request('DELETE', '/v1/tables/nope/policies/own')).json.code, 'table_not_found');
  t.same((await ok(server.request('GET', '/v1/tables/open/policies'))).json, { policies: [] });
  for (const auth of [alice, rita]) {
    t.equal((await server.request('GET', '/v1/tables/notes/policies', { auth })).json.code, 'forbidden', 'reads are for admins too');
    t.equal((await server.request('PUT', '/v1/tables/open/policies/mine', { auth, body: { appliesTo: { roles: ['reader'] } } })).json.code, 'forbidden');
  }
});

t.test('a table holds a bounded number of policies', async (t) => {
  await ok(server.request('POST', '/v1/tables', { body: { name: 'many', primaryKey: 'id' } }), 201);
  for (let i = 0; i < 100; i++) await ok(server.request('PUT', `/v1/tables/many/policies/p${i}`, { body: { appliesTo: { users: [`u${i}`] } } }), 201);
  const over = await server.request('PUT', '/v1/tables/many/policies/p100', { body: { appliesTo: { users: ['u100'] } } });
  t.equal(over.status, 400);
  t.match(over.json.detail, /100 policies/);
  t.equal((await server.request('PUT', '/v1/tables/many/policies/p0', { body: { appliesTo: { users: ['v'] } } })).status, 200, 'replacing one still works');
  await ok(server.request('DELETE', '/v1/tables/many'), 204);
});

t.test('policy changes, role changes and user deletion take effect on the next request, open transactions included', async (t) => {
  await ok(server.request('POST', '/v1/tables', { body: { name: 'live', primaryKey: 'id' } }), 201);
  await ok(put('live', 'a', { team: 'red' }), 201);
  await ok(put('live', 'b', { team: 'blue' }), 201);
  const created = await ok(server.request('PUT', '/v1/tables/live/policies/red', { body: { appliesTo: { roles: ['writer'] }, read: { team: 'red' }, write: { team: 'red' } } }), 201);
  t.match(created.json, { table: 'live', name: 'red', appliesTo: { roles: ['writer'] }, read: { team: 'red' }, seq: Number });
  t.same(await listAll('live', wade), ['a']);
  const begun = await ok(server.request('POST', '/v1/transactions', { body: { isolation: 'read_committed' }, auth: wade }), 201);
  const tx = { 'transaction-id': begun.json.id };
  t.same(keysOf((await ok(query({ table: 'live' }, wade, tx))).json.rows), ['a']);
  const replaced = await ok(server.request('PUT', '/v1/tables/live/policies/red', { body: { appliesTo: { roles: ['writer'] }, read: { team: 'blue' } } }));
  t.ok(replaced.json.seq > created.json.seq, 'replaced: 200 with the new seq');
  t.same(await listAll('live', wade), ['b'], 'a replaced policy applies at once');
  t.same(keysOf((await ok(query({ table: 'live' }, wade, tx))).json.rows), ['b'], 'inside the open transaction too');
  t.equal((await put('live', 'c', { team: 'blue' }, wade)).json.code, 'forbidden', 'the new policy grants no writes');
  await ok(server.request('PUT', '/v1/admin/users/wade/roles', { body: { roles: ['reader'] } }));
  t.same(await listAll('live', wade), [], 'as a reader no policy applies to him');
  t.same(keysOf((await ok(query({ table: 'live' }, wade, tx))).json.rows), [], 'nor inside his transaction');
  await ok(server.request('PUT', '/v1/admin/users/wade/roles', { body: { roles: ['writer'] } }));
  await ok(server.request('DELETE', '/v1/tables/live/policies/red'), 204);
  t.same(await listAll('live', wade), ['a', 'b'], 'without policies the table behaves as before');
  await ok(server.request('POST', `/v1/transactions/${begun.json.id}/rollback`, { auth: wade }));
  await ok(server.request('DELETE', '/v1/tables/live'), 204);
});

t.test('a dropped table takes its policies along: one created under the name starts without any', async (t) => {
  await ok(server.request('POST', '/v1/tables', { body: { name: 'again', primaryKey: 'id' } }), 201);
  await ok(server.request('PUT', '/v1/tables/again/policies/none', { body: { appliesTo: { roles: ['writer', 'reader'] } } }), 201);
  await ok(put('again', 'x', { v: 1 }), 201);
  t.same(await listAll('again', alice), []);
  await ok(server.request('DELETE', '/v1/tables/again'), 204);
  await ok(server.request('POST', '/v1/tables', { body: { name: 'again', primaryKey: 'id' } }), 201);
  await ok(put('again', 'y', { v: 2 }), 201);
  t.same((await ok(server.request('GET', '/v1/tables/again/policies'))).json.policies, []);
  t.same(await listAll('again', alice), ['y']);
  const audit = (await ok(server.request('GET', '/v1/admin/audit?type=policy_changed&limit=1'))).json.entries[0];
  t.match(audit.details, { table: 'again', names: ['none'], action: 'dropped with the table' });
  await ok(server.request('DELETE', '/v1/tables/again'), 204);
});

t.test('each policy change is audited policy_changed with who, where and which request', async (t) => {
  await ok(server.request('POST', '/v1/tables', { body: { name: 'audited', primaryKey: 'id' } }), 201);
  const headers = (id: string) => ({ 'x-request-id': id });
  await ok(server.request('PUT', '/v1/tables/audited/policies/p', { body: { appliesTo: { users: ['alice'] }, read: { a: 1 } }, headers: headers('pol-create') }), 201);
  await ok(server.request('PUT', '/v1/tables/audited/policies/p', { body: { appliesTo: { users: ['alice'] }, read: { a: 2 } }, headers: headers('pol-replace') }));
  await ok(server.request('DELETE', '/v1/tables/audited/policies/p', { headers: headers('pol-delete') }), 204);
  const entries = (await ok(server.request('GET', '/v1/admin/audit?type=policy_changed&limit=3'))).json.entries.reverse();
  t.match(entries, [
    { type: 'policy_changed', severity: 'warning', outcome: 'success', user: 'admin', clientIp: /127\.0\.0\.1/, requestId: 'pol-create', details: { table: 'audited', name: 'p', action: 'created', read: { a: 1 } } },
    { requestId: 'pol-replace', details: { action: 'replaced', read: { a: 2 } } },
    { requestId: 'pol-delete', details: { table: 'audited', name: 'p', action: 'deleted' } },
  ]);
  await ok(server.request('DELETE', '/v1/tables/audited'), 204);
});

t.test('policies survive a checkpoint and restarts, and keep applying', async (t: Test) => {
  const dataDir = server.dataDir;
  const before = (await ok(server.request('GET', '/v1/tables/notes/policies'))).json;
  t.equal(await server.stop(), 0);
  server = await startServer({ dataDir });
  t.same((await ok(server.request('GET', '/v1/tables/notes/policies'))).json, before, 'replayed from the log');
  t.same(await listAll('notes', alice), ['n1', 'n3', 'n4', 't1']);
  await ok(server.request('POST', '/v1/admin/checkpoint'));
  await server.kill();
  server = await startServer({ dataDir });
  t.same((await ok(server.request('GET', '/v1/tables/notes/policies'))).json, before, 'read back from the checkpoint');
  t.same(await listAll('notes', rita), ['n7']);
  t.equal((await server.request('GET', '/v1/tables/notes/rows/n2', { auth: alice })).status, 404);
});

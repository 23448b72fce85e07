// Whole tables in time through the real server (http-api.md §9): the diff between two seqs against a brute-force
// model (property-based, paged with small limits), fork and restore equal to the asOf read they copy, history kept,
// and both atomic across a SIGKILL.

import fc from 'fast-check';
import t from 'tap';
import { basicAuth, startServer, type TestServer } from '../helpers/server.js';

type Doc = Record<string, unknown>;

async function ok(server: TestServer, method: string, path: string, body?: unknown): Promise<any> {
  const answer = await server.request(method, path, body === undefined ? {} : { body });
  if (answer.status < 200 || answer.status > 299) throw new Error(`${method} ${path}: ${answer.status} ${answer.text}`);
  return answer.json;
}

/** Every row of a table (following nextCursor), optionally as of a point. */
async function allRows(server: TestServer, table: string, asOf?: number, limit = 7): Promise<Doc[]> {
  const rows: Doc[] = [];
  let cursor: string | null = null;
  do {
    const query = new URLSearchParams({ limit: String(limit), ...(asOf === undefined ? {} : { asOf: String(asOf) }), ...(cursor ? { cursor } : {}) });
    const page = await ok(server, 'GET', `/v1/tables/${table}/rows?${query}`);
    rows.push(...page.rows);
    cursor = page.nextCursor;
  } while (cursor !== null);
  return rows;
}

/** Every change of a diff, following nextCursor with pages of `limit`. */
async function allChanges(server: TestServer, table: string, from: number, to: number, limit: number): Promise<unknown[]> {
  const changes: unknown[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const query = new URLSearchParams({ from: String(from), to: String(to), limit: String(limit), ...(cursor ? { cursor } : {}) });
    const page = await ok(server, 'GET', `/v1/tables/${table}/diff?${query}`);
    if (page.from !== from || page.to !== to) throw new Error(`page of ${page.from}..${page.to}, asked ${from}..${to}`);
    if (page.changes.length > limit) throw new Error(`a page of ${page.changes.length} changes for limit ${limit}`);
    changes.push(...page.changes);
    cursor = page.nextCursor;
    if (++pages > 1000) throw new Error('the cursor does not end');
  } while (cursor !== null);
  return changes;
}

let server: TestServer;
t.before(async () => {
  server = await startServer();
});
t.teardown(() => server.kill());

t.test('a diff leaves out a row whose document is the same JSON value, whatever its member order', async (t) => {
  await ok(server, 'POST', '/v1/tables', { name: 'ordered', primaryKey: 'id' });
  const first = (await ok(server, 'PUT', '/v1/tables/ordered/rows/k', { a: 1, b: { c: 2, d: 3 } })).seq;
  const second = (await ok(server, 'PUT', '/v1/tables/ordered/rows/k', { b: { d: 3, c: 2 }, a: 1 })).seq;
  const diff = await ok(server, 'GET', `/v1/tables/ordered/diff?from=${first}&to=${second}`);
  t.same(diff.changes, [], 'unchanged rows are left out');
  const restored = await ok(server, 'POST', '/v1/tables/ordered/restore', { asOf: first });
  t.same(restored, { seq: null, rowsChanged: 0 }, 'a restore to an equal state changes nothing');
});

// ---- the diff against a model ---------------------------------------------------------------------------------

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** RFC 7396 JSON Merge Patch. */
function mergePatch(target: Json | undefined, patch: Json): Json {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const result: { [key: string]: Json } = target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...target } : {};
  for (const [name, value] of Object.entries(patch)) {
    if (value === null) delete result[name];
    else result[name] = mergePatch(result[name], value);
  }
  return result;
}

/** JSON text with members sorted: equal values, equal texts. */
function canonical(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([name, member]) => `${JSON.stringify(name)}:${canonical(member)}`).join(',')}}`;
}

/** Code-point order of keys, as the contract orders them. */
function byCodePoint(a: string, b: string): number {
  const pointsA = [...a].map((c) => c.codePointAt(0)!);
  const pointsB = [...b].map((c) => c.codePointAt(0)!);
  for (let i = 0; i < Math.min(pointsA.length, pointsB.length); i++) if (pointsA[i] !== pointsB[i]) return pointsA[i]! - pointsB[i]!;
  return pointsA.length - pointsB.length;
}

type State = Map<string, Doc>;

function modelDiff(before: State, after: State): unknown[] {
  const keys = [...new Set([...before.keys(), ...after.keys()])].sort(byCodePoint);
  const changes: unknown[] = [];
  for (const key of keys) {
    const a = before.get(key) ?? null;
    const b = after.get(key) ?? null;
    if (canonical(a) === canonical(b)) continue;
    changes.push({ key, change: a === null ? 'added' : b === null ? 'removed' : 'changed', before: a, after: b });
  }
  return changes;
}

const keyArb = fc.constantFrom('a', 'b', '10', '9', 'é', '😀', '\uffee');
// Small value ranges, so that equal documents (in other member orders) and no-op patches come up often.
const docArb = fc
  .tuple(fc.record({ v: fc.integer({ min: 0, max: 2 }), w: fc.constantFrom('x', 'y'), n: fc.record({ p: fc.integer({ min: 0, max: 1 }) }) }, { requiredKeys: ['v'] }), fc.boolean())
  .map(([doc, reversed]) => (reversed ? Object.fromEntries(Object.entries(doc).reverse()) : doc));
const patchArb = fc.record(
  { v: fc.option(fc.integer({ min: 0, max: 2 })), w: fc.option(fc.constantFrom('x', 'y')), n: fc.option(fc.record({ p: fc.option(fc.integer({ min: 0, max: 1 })) })) },
  { requiredKeys: [] },
);
const opArb = fc.oneof(
  fc.record({ op: fc.constant('put' as const), key: keyArb, doc: docArb }),
  fc.record({ op: fc.constant('patch' as const), key: keyArb, patch: patchArb }),
  fc.record({ op: fc.constant('delete' as const), key: keyArb }),
  // The row's document again, its members in reverse order: the same JSON value.
  fc.record({ op: fc.constant('reput' as const), key: keyArb }),
);

let diffRuns = 0;
let diffChangesSeen = 0;

t.test('diff pages, followed to the end, equal a brute-force diff of the states the writes made', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(opArb, { minLength: 1, maxLength: 14 }),
      fc.array(fc.tuple(fc.nat(), fc.nat(), fc.integer({ min: 1, max: 3 })), { minLength: 1, maxLength: 4 }),
      async (ops, pairs) => {
        const name = `diff${++diffRuns}`;
        const created = (await ok(server, 'POST', '/v1/tables', { name, primaryKey: 'id' })).createdSeq as number;
        // The model: the table's rows after every write, by the write's seq.
        const states: Array<{ seq: number; state: State }> = [{ seq: 0, state: new Map() }, { seq: created, state: new Map() }];
        let state: State = new Map();
        for (const op of ops) {
          const path = `/v1/tables/${name}/rows/${encodeURIComponent(op.key)}`;
          const next = new Map(state);
          let answer;
          if (op.op === 'put') {
            answer = await server.request('PUT', path, { body: op.doc });
            next.set(op.key, { ...op.doc, id: op.key });
          } else if (op.op === 'patch') {
            answer = await server.request('PATCH', path, { body: op.patch });
            next.set(op.key, mergePatch((state.get(op.key) ?? { id: op.key }) as Json, op.patch as Json) as Doc);
          } else if (op.op === 'reput') {
            const now = state.get(op.key);
            if (now === undefined) continue;
            answer = await server.request('PUT', path, { body: Object.fromEntries(Object.entries(now).reverse()) });
          } else {
            answer = await server.request('DELETE', path);
            if (!state.has(op.key)) {
              if (answer.status !== 404) throw new Error(`delete of an absent row: ${answer.status} ${answer.text}`);
              continue;
            }
            next.delete(op.key);
          }
          if (answer.status < 200 || answer.status > 299) throw new Error(`${op.op} ${op.key}: ${answer.status} ${answer.text}`);
          state = next;
          states.push({ seq: answer.json.seq, state });
        }
        const last = states.at(-1)!.seq;
        // Any seq from 0 to the last write, most of them write seqs.
        const pointOf = (n: number): number => (n % 3 === 0 ? n % (last + 1) : states[n % states.length]!.seq);
        const stateAt = (seq: number): State => states.filter((s) => s.seq <= seq).at(-1)!.state;
        for (const [x, y, limit] of pairs) {
          const [from, to] = [pointOf(x), pointOf(y)].sort((a, b) => a - b) as [number, number];
          const changes = await allChanges(server, name, from, to, limit);
          const expected = modelDiff(stateAt(from), stateAt(to));
          diffChangesSeen += changes.length;
          if (canonical(changes) !== canonical(expected)) {
            throw new Error(`diff ${from}..${to} (limit ${limit}):\n got ${JSON.stringify(changes)}\nwant ${JSON.stringify(expected)}`);
          }
        }
      },
    ),
    { numRuns: 60 },
  );
  t.ok(diffChangesSeen > 0, `every diff matched the model (${diffRuns} tables, ${diffChangesSeen} changes)`);
});

t.test('diff checks from ≤ to ≤ newest, its cursor, the table and the caller grants', async (t) => {
  await ok(server, 'POST', '/v1/tables', { name: 'checked', primaryKey: 'id' });
  await ok(server, 'POST', '/v1/tables', { name: 'other', primaryKey: 'id' });
  const a = (await ok(server, 'PUT', '/v1/tables/checked/rows/a', { v: 1 })).seq as number;
  const b = (await ok(server, 'PUT', '/v1/tables/checked/rows/b', { v: 1 })).seq as number;
  // Past the newest seq by a margin: the server commits on its own meanwhile (the audit log's head, a moment after
  // the tables above were created and audited), so newest + 1 may exist by the time the diff is asked.
  const newest = (await ok(server, 'GET', '/v1/admin/stats')).seq as number;
  const beyond = newest + 1000;
  const code = async (path: string, auth?: string): Promise<string> => {
    const answer = await server.request('GET', path, auth === undefined ? {} : { auth });
    return `${answer.status} ${answer.json?.code ?? ''}`.trim();
  };
  t.equal(await code(`/v1/tables/checked/diff?from=${b}&to=${a}`), '400 validation_failed', 'from after to');
  t.equal(await code(`/v1/tables/checked/diff?from=0&to=${beyond}`), '400 validation_failed', 'to beyond the newest seq');
  t.equal(await code(`/v1/tables/checked/diff?from=${beyond}&to=${beyond}`), '400 validation_failed', 'from beyond the newest seq');
  t.equal(await code(`/v1/tables/checked/diff?from=-1&to=${b}`), '400 validation_failed', 'a negative from');
  t.equal(await code(`/v1/tables/checked/diff?to=${b}`), '400 validation_failed', 'no from');
  t.equal(await code(`/v1/tables/checked/diff?from=0&to=${b}&limit=0`), '400 validation_failed', 'limit 0');
  t.equal(await code(`/v1/tables/checked/diff?from=0&to=${b}&limit=1001`), '400 validation_failed', 'limit over 1000');
  t.equal(await code(`/v1/tables/missing/diff?from=0&to=${b}`), '404 table_not_found');
  t.equal(await code(`/v1/tables/checked/diff?from=${newest}&to=${newest}`), '200', 'from = to = newest');

  const first = await ok(server, 'GET', `/v1/tables/checked/diff?from=0&to=${b}&limit=1`);
  t.same(first.changes.map((c: { key: string }) => c.key), ['a'], 'key order, one per page');
  t.type(first.nextCursor, 'string');
  t.equal(await code(`/v1/tables/checked/diff?from=0&to=${a}&limit=1&cursor=${first.nextCursor}`), '400 validation_failed', 'a cursor for another to');
  t.equal(await code(`/v1/tables/checked/diff?from=1&to=${b}&limit=1&cursor=${first.nextCursor}`), '400 validation_failed', 'a cursor for another from');
  t.equal(await code(`/v1/tables/other/diff?from=0&to=${b}&limit=1&cursor=${first.nextCursor}`), '400 validation_failed', 'a cursor for another table');
  const second = await ok(server, 'GET', `/v1/tables/checked/diff?from=0&to=${b}&limit=1&cursor=${first.nextCursor}`);
  t.same(second.changes, [{ key: 'b', change: 'added', before: null, after: { id: 'b', v: 1 } }]);

  await ok(server, 'POST', '/v1/admin/users', { username: 'narrow', password: 'narrow-password-1', roles: ['writer'], grants: ['other'] });
  const narrow = basicAuth('narrow', 'narrow-password-1');
  t.equal(await code(`/v1/tables/checked/diff?from=0&to=${b}`, narrow), '403 forbidden', 'diff needs a grant for the table');
  t.equal(await code(`/v1/tables/other/diff?from=0&to=${b}`, narrow), '200');
  const fork = await server.request('POST', '/v1/tables/checked/fork', { body: { name: 'stolen', asOf: b }, auth: narrow });
  t.equal(fork.status, 403, 'fork needs a grant for the source');
  const restore = await server.request('POST', '/v1/tables/checked/restore', { body: { asOf: a }, auth: narrow });
  t.equal(restore.status, 403, 'restore needs a grant for the table');
  await ok(server, 'POST', '/v1/admin/users', { username: 'looker', password: 'looker-password-1', roles: ['reader'] });
  const reader = await server.request('POST', '/v1/tables/checked/restore', { body: { asOf: a }, auth: basicAuth('looker', 'looker-password-1') });
  t.equal(reader.status, 403, 'restore needs the writer role');
});

// ---- fork and restore ---------------------------------------------------------------------------------------------

/** Writes a few commits of every kind to `table`; answers the seq after each. */
async function writeHistory(table: string, rounds: number): Promise<number[]> {
  const points: number[] = [];
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < 6; i++) await ok(server, 'PUT', `/v1/tables/${table}/rows/k${(round * 5 + i) % 17}`, { v: round * 10 + i, tag: `t${i % 3}` });
    await ok(server, 'PATCH', `/v1/tables/${table}/rows/k${round % 17}`, { patched: round, tag: null });
    const victim = await server.request('DELETE', `/v1/tables/${table}/rows/k${(round * 7 + 3) % 17}`);
    if (victim.status !== 200 && victim.status !== 404) throw new Error(victim.text);
    const batch = await ok(server, 'POST', '/v1/batch', {
      ops: [
        { op: 'put', table, key: `b${round}`, doc: { v: round, tag: 'batch' } },
        { op: 'patch', table, key: `k${(round + 1) % 17}`, doc: { v: -round } },
      ],
    });
    points.push(batch.seq);
  }
  return points;
}

const schema = { type: 'object', properties: { v: { type: 'number' }, tag: { type: 'string' } } };

t.test('a fork holds the source rows as of its point, with the same primary key, schema and indexes, and its own history', async (t) => {
  await ok(server, 'POST', '/v1/tables', { name: 'origin', primaryKey: 'code', indexes: ['v', 'tag'], schema });
  const points = await writeHistory('origin', 4);
  const source = await ok(server, 'GET', '/v1/tables/origin');
  for (const [i, point] of [source.createdSeq as number, ...points].entries()) {
    const name = `fork${i}`;
    const answer = await server.request('POST', '/v1/tables/origin/fork', { body: { name, asOf: point } });
    t.equal(answer.status, 201, answer.text);
    t.equal(answer.headers.location, `/v1/tables/${name}`);
    const expected = await allRows(server, 'origin', point);
    t.match(answer.json, { name, primaryKey: 'code', indexes: ['v', 'tag'], schema, rowCount: expected.length, forkedFrom: { table: 'origin', seq: point } });
    t.same(await ok(server, 'GET', `/v1/tables/${name}`), answer.json, 'GET of the table answers what the fork did');
    t.same(await allRows(server, name), expected, `fork ${name} equals origin as of ${point}, row by row`);
    const created = answer.json.createdSeq as number;
    for (const row of expected.slice(0, 3)) {
      const history = await ok(server, 'GET', `/v1/tables/${name}/rows/${row.code}/history`);
      t.same(history.versions.map((v: { seq: number; op: string }) => [v.seq, v.op]), [[created, 'put']], 'its history starts at the fork');
    }
    t.same(await allRows(server, name, created - 1), [], 'before the fork the table held nothing');
  }
  // The schema and indexes work in the fork.
  const refused = await server.request('PUT', '/v1/tables/fork4/rows/x', { body: { v: 'not a number' } });
  t.equal(refused.status, 400, 'the schema is kept');
  const plan = await ok(server, 'POST', '/v1/query/explain', { table: 'fork4', where: { tag: 'batch' } });
  t.equal(plan.plan.access, 'index', 'the indexes are kept');
  // The source is untouched by its forks, and a fork does not follow its source.
  await ok(server, 'PUT', '/v1/tables/origin/rows/later', { v: 1 });
  t.equal((await server.request('GET', '/v1/tables/fork4/rows/later')).status, 404);

  // asOf as an instant: the state after the last commit at or before it.
  const history = await ok(server, 'GET', `/v1/tables/origin/rows/b1/history`);
  const at = history.versions[0];
  const byTime = await ok(server, 'POST', '/v1/tables/origin/fork', { name: 'bytime', asOf: at.ts });
  t.ok(byTime.forkedFrom.seq >= at.seq, 'an instant resolves to a seq at or after the version it names');
  t.same(await allRows(server, 'bytime'), await allRows(server, 'origin', byTime.forkedFrom.seq));

  const taken = await server.request('POST', '/v1/tables/origin/fork', { body: { name: 'fork1', asOf: points[0] } });
  t.equal(taken.json?.code, 'table_exists');
  const future = await server.request('POST', '/v1/tables/origin/fork', { body: { name: 'future', asOf: 1e9 } });
  t.equal(future.status, 400);
  const system = await server.request('POST', '/v1/tables/origin/fork', { body: { name: '_mine', asOf: points[0] } });
  t.equal(system.status, 400, 'a fork may not take a system name');
  const missing = await server.request('POST', '/v1/tables/nowhere/fork', { body: { name: 'nothing', asOf: points[0] } });
  t.equal(missing.json?.code, 'table_not_found');
});

t.test('a restore makes the rows equal their asOf read in one commit, keeping the history before it', async (t) => {
  await ok(server, 'POST', '/v1/tables', { name: 'undo', primaryKey: 'code', indexes: ['tag'], schema });
  const points = await writeHistory('undo', 5);
  const target = points[1]!;
  const wanted = await allRows(server, 'undo', target);
  const before = await allRows(server, 'undo');
  const differing = await allChanges(server, 'undo', target, points.at(-1)!, 1000);
  t.ok(differing.length > 0, 'the rows changed since the target');

  const restored = await ok(server, 'POST', '/v1/tables/undo/restore', { asOf: target });
  t.equal(restored.rowsChanged, differing.length, 'rowsChanged counts the rows that differed');
  t.same(await allRows(server, 'undo'), wanted, 'the rows now equal the asOf read');
  t.same(await allRows(server, 'undo', restored.seq - 1), before, 'the state before the restore is still readable');
  t.same(await allChanges(server, 'undo', target, restored.seq, 2), [], 'nothing differs from the target any more');

  // One commit: the feed shows it once, with every row it wrote.
  const feed = await ok(server, 'GET', `/v1/changes?tables=undo&since=${restored.seq - 1}&limit=1`);
  t.equal(feed.commits[0].seq, restored.seq);
  t.equal(feed.commits[0].changes.length, restored.rowsChanged, 'one commit holds every row the restore wrote');

  // Earlier versions stay in each key's history, the restore's version last.
  const touched = (differing[0] as { key: string }).key;
  const history = await ok(server, 'GET', `/v1/tables/undo/rows/${touched}/history`);
  t.ok(history.versions.length >= 2, 'the history before stays');
  t.equal(history.versions.at(-1).seq, restored.seq);

  t.same(await ok(server, 'POST', '/v1/tables/undo/restore', { asOf: target }), { seq: null, rowsChanged: 0 }, 'a second restore has nothing to do');
  const created = (await ok(server, 'GET', '/v1/tables/undo')).createdSeq as number;
  const emptied = await ok(server, 'POST', '/v1/tables/undo/restore', { asOf: created });
  t.equal(emptied.rowsChanged, wanted.length, 'a restore to the creation deletes every row');
  t.same(await allRows(server, 'undo'), []);
  t.same(await allRows(server, 'undo', emptied.seq - 1), wanted);
  const refused = await server.request('POST', '/v1/tables/undo/restore', { body: { asOf: 1e9 } });
  t.equal(refused.status, 400, 'asOf beyond the newest seq');
  const inTx = await server.request('POST', '/v1/tables/undo/restore', { body: { asOf: target }, headers: { 'transaction-id': 'x' } });
  t.equal(inTx.status, 400, 'a restore is its own commit');
});

t.test('a restore that waits for a row lock still leaves every row as of its point, rows changed meanwhile included', async (t) => {
  await ok(server, 'POST', '/v1/tables', { name: 'contended', primaryKey: 'id' });
  await ok(server, 'PUT', '/v1/tables/contended/rows/a', { v: 1 });
  const point = (await ok(server, 'PUT', '/v1/tables/contended/rows/b', { v: 1 })).seq as number;
  await ok(server, 'PUT', '/v1/tables/contended/rows/a', { v: 2 });
  await ok(server, 'PUT', '/v1/tables/contended/rows/c', { v: 1 });
  // A transaction holds a's lock, so the restore (which must rewrite a) waits for it...
  const holder = (await ok(server, 'POST', '/v1/transactions', {})).id as string;
  await server.request('PUT', '/v1/tables/contended/rows/a', { body: { v: 3 }, headers: { 'transaction-id': holder } });
  const restoring = server.request('POST', '/v1/tables/contended/restore', { body: { asOf: point } });
  await new Promise((resolve) => setTimeout(resolve, 300));
  // ...while b, equal to its target when the restore began, changes, and c, which it must delete, is deleted.
  await ok(server, 'PUT', '/v1/tables/contended/rows/b', { v: 9 });
  await ok(server, 'DELETE', '/v1/tables/contended/rows/c');
  await ok(server, 'POST', `/v1/transactions/${holder}/commit`);
  const restored = await restoring;
  t.equal(restored.status, 200, restored.text);
  t.equal(restored.json.rowsChanged, 2, 'a and b rewritten; c needed nothing more');
  t.same(await allRows(server, 'contended'), await allRows(server, 'contended', point), 'every row as of the point');
  t.same(await allRows(server, 'contended', restored.json.seq), await allRows(server, 'contended', point), 'at the restore\'s own seq too');
});

t.test('a SIGKILL during or right after a fork or a restore leaves all of it or none after restart', async (t) => {
  let node = await startServer();
  t.teardown(() => node.kill());
  await ok(node, 'POST', '/v1/tables', { name: 'bulk', primaryKey: 'id' });
  const pad = 'p'.repeat(400);
  const batches: number[] = [];
  for (let b = 0; b < 6; b++) {
    const ops = Array.from({ length: 500 }, (_, i) => ({ op: 'put', table: 'bulk', key: `r${(b * 300 + i) % 2000}`, doc: { b, i, pad } }));
    batches.push((await ok(node, 'POST', '/v1/batch', { ops })).seq);
  }
  // How long a fork and a restore take here, so the kills below land before, during and after them.
  const started = Date.now();
  await Promise.all([ok(node, 'POST', '/v1/tables/bulk/fork', { name: 'warm', asOf: batches[4] }), ok(node, 'POST', '/v1/tables/bulk/restore', { asOf: batches[3] })]);
  const tookMs = Date.now() - started;
  // Each round forks and restores at once, and kills the server a little later each time (from at once on).
  for (const [round, delayMs] of [0, 0.3, 0.6, 0.9, 1.2, 2].map((f) => Math.round(f * tookMs)).entries()) {
    const point = batches[round % batches.length]!;
    const forkPoint = batches[(round + 2) % batches.length]!;
    const current = await allRows(node, 'bulk', undefined, 1000);
    const wanted = await allRows(node, 'bulk', point, 1000);
    const forkWanted = await allRows(node, 'bulk', forkPoint, 1000);
    const name = `copy${round}`;
    const fork = node.request('POST', '/v1/tables/bulk/fork', { body: { name, asOf: forkPoint } }).catch(() => null);
    const restore = node.request('POST', '/v1/tables/bulk/restore', { body: { asOf: point } }).catch(() => null);
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    await node.kill();
    const [forked, restored] = await Promise.all([fork, restore]);

    node = await startServer({ dataDir: node.dataDir });
    const copy = await node.request('GET', `/v1/tables/${name}`);
    if (forked?.status === 201) t.equal(copy.status, 200, `round ${round}: an acknowledged fork survives`);
    if (copy.status === 200) t.same(await allRows(node, name, undefined, 1000), forkWanted, `round ${round}: the fork holds every row, or does not exist`);
    else t.equal(copy.status, 404);
    const rows = await allRows(node, 'bulk', undefined, 1000);
    if (restored?.status === 200) t.same(rows, wanted, `round ${round}: an acknowledged restore survives whole`);
    else t.ok(canonical(rows) === canonical(wanted) || canonical(rows) === canonical(current), `round ${round}: the restore is all there or not at all`);
    t.comment(`round ${round}: fork ${forked?.status ?? 'no answer'} (${copy.status}), restore ${restored?.status ?? 'no answer'}`);
  }
});

// Idempotency-Key through the real server (http-api.md §9): every write route replays its first 2xx answer (status,
// body, ETag, Location, `Idempotent-Replayed: true`) and writes nothing more; keys are checked, per user, refused
// for another request (422) and while the first runs (409); a refused request runs again; races write once; stored
// answers survive a SIGKILL (checkpoint or not) and expire after --idempotency-ttl-ms.

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import http from 'node:http';
import * as path from 'node:path';
import t from 'tap';
import { decodeFrames, encodeFrame } from '../../src/engine/log/frame.js';
import { parseRecord } from '../../src/engine/log/segment.js';
import { basicAuth, sleep, startServer, type Response, type TestServer } from '../helpers/server.js';

async function ok(server: TestServer, method: string, path: string, body?: unknown): Promise<any> {
  const answer = await server.request(method, path, body === undefined ? {} : { body });
  if (answer.status < 200 || answer.status > 299) throw new Error(`${method} ${path}: ${answer.status} ${answer.text}`);
  return answer.json;
}

function keyed(server: TestServer, key: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}, auth?: string): Promise<Response> {
  return server.request(method, path, { ...(body === undefined ? {} : { body }), headers: { 'idempotency-key': key, ...headers }, ...(auth === undefined ? {} : { auth }) });
}

/** The parts of an answer a replay must repeat. */
function shape(answer: Response): object {
  return { status: answer.status, body: answer.text, etag: answer.headers.etag, location: answer.headers.location };
}

async function versions(server: TestServer, table: string, key: string): Promise<number> {
  return (await ok(server, 'GET', `/v1/tables/${table}/rows/${key}/history`)).versions.length;
}

let server: TestServer;
t.before(async () => {
  server = await startServer();
  await ok(server, 'POST', '/v1/tables', { name: 'items', primaryKey: 'id' });
});
t.teardown(() => server.kill());

t.test('every write route replays its first answer, marked Idempotent-Replayed, and writes nothing more', async (t) => {
  const repeat = async (label: string, send: () => Promise<Response>): Promise<Response> => {
    const first = await send();
    t.ok(first.status >= 200 && first.status < 300, `${label}: ${first.status} ${first.text}`);
    t.notOk(first.headers['idempotent-replayed'], `${label}: the first answer is no replay`);
    const seq = (await ok(server, 'GET', '/v1/admin/stats')).seq;
    const again = await send();
    t.same(shape(again), shape(first), `${label}: the same status, body, ETag and Location`);
    t.equal(again.headers['idempotent-replayed'], 'true', `${label}: marked as a replay`);
    // The feed leaves out the system tables, whose rows (the audit log's head) may be written meanwhile.
    t.same((await ok(server, 'GET', `/v1/changes?since=${seq}`)).commits, [], `${label}: the replay committed nothing`);
    return first;
  };
  const put = await repeat('PUT', () => keyed(server, 'put-1', 'PUT', '/v1/tables/items/rows/a', { v: 1 }));
  t.equal(put.status, 201);
  t.equal(put.headers.etag, `"${put.json.seq}"`);
  await repeat('PUT replacing', () => keyed(server, 'put-2', 'PUT', '/v1/tables/items/rows/a', { v: 2 }));
  await repeat('PATCH', () => keyed(server, 'patch-1', 'PATCH', '/v1/tables/items/rows/a', { w: 1 }));
  await repeat('DELETE', () => keyed(server, 'delete-1', 'DELETE', '/v1/tables/items/rows/a'));
  t.equal(await versions(server, 'items', 'a'), 4, 'one version per keyed write');
  const batch = await repeat('batch', () =>
    keyed(server, 'batch-1', 'POST', '/v1/batch', { ops: [{ op: 'put', table: 'items', key: 'b', doc: { v: 1 } }, { op: 'get', table: 'items', key: 'b' }] }),
  );
  t.equal(await versions(server, 'items', 'b'), 1);
  const tx = (await ok(server, 'POST', '/v1/transactions', {})).id as string;
  await ok(server, 'PUT', '/v1/tables/items/rows/c', { v: 1 }).catch(() => undefined);
  await server.request('PUT', '/v1/tables/items/rows/d', { body: { v: 1 }, headers: { 'transaction-id': tx } });
  const commit = await repeat('commit', () => keyed(server, 'commit-1', 'POST', `/v1/transactions/${tx}/commit`));
  t.type(commit.json.seq, 'number');
  const fork = await repeat('fork', () => keyed(server, 'fork-1', 'POST', '/v1/tables/items/fork', { name: 'copy', asOf: batch.json.seq }));
  t.equal(fork.status, 201);
  t.equal(fork.headers.location, '/v1/tables/copy');
  await repeat('restore', () => keyed(server, 'restore-1', 'POST', '/v1/tables/items/restore', { asOf: batch.json.seq }));
  await repeat('restore with nothing to do', () => keyed(server, 'restore-2', 'POST', '/v1/tables/items/restore', { asOf: batch.json.seq }));
  const readOnly = await ok(server, 'POST', '/v1/transactions', {});
  await repeat('commit of a transaction that wrote nothing', () => keyed(server, 'commit-2', 'POST', `/v1/transactions/${readOnly.id}/commit`));
});

t.test('keys are 1 to 255 visible ASCII characters, one per request', async (t) => {
  const status = async (key: string): Promise<string> => {
    const answer = await keyed(server, key, 'PUT', '/v1/tables/items/rows/keys', { v: 1 });
    return `${answer.status} ${answer.json?.code ?? ''}`.trim();
  };
  t.equal(await status('k'.repeat(255)), '201');
  t.equal(await status('!~"quoted"'), '200', 'any visible ASCII');
  for (const bad of ['k'.repeat(256), '', 'a b', 'tab\there', 'é']) t.equal(await status(bad), '400 bad_request', JSON.stringify(bad.slice(0, 20)));
  const two = await server.request('PUT', '/v1/tables/items/rows/keys', { body: { v: 1 }, headers: { 'idempotency-key': 'one' } });
  t.equal(two.status, 200);
  const raw = await new Promise<number>((resolve, reject) => {
    const url = new URL('/v1/tables/items/rows/keys', server.url);
    // Two header lines of the same name (an array of pairs keeps them apart).
    const headers = ['authorization', server.auth, 'content-type', 'application/json', 'idempotency-key', 'x', 'idempotency-key', 'y'];
    const request = http.request(url, { method: 'PUT', headers }, (response) => {
      response.resume();
      resolve(response.statusCode!);
    });
    request.on('error', reject);
    request.end('{"v":1}');
  });
  t.equal(raw, 400, 'two Idempotency-Key headers');
});

t.test('the key with another method, path or body is 422; another user has keys of their own', async (t) => {
  const first = await keyed(server, 'reuse', 'PUT', '/v1/tables/items/rows/r', { v: 1 });
  t.equal(first.status, 201);
  for (const [label, answer] of [
    ['another body', await keyed(server, 'reuse', 'PUT', '/v1/tables/items/rows/r', { v: 2 })],
    ['the same value in other bytes', await keyed(server, 'reuse', 'PUT', '/v1/tables/items/rows/r', '{"v": 1}')],
    ['another path', await keyed(server, 'reuse', 'PUT', '/v1/tables/items/rows/s', { v: 1 })],
    ['another method', await keyed(server, 'reuse', 'PATCH', '/v1/tables/items/rows/r', { v: 1 })],
    ['another route', await keyed(server, 'reuse', 'POST', '/v1/batch', { ops: [{ op: 'put', table: 'items', key: 'r', doc: { v: 1 } }] })],
  ] as const) {
    t.equal(answer.status, 422, label);
    t.equal(answer.json.code, 'idempotency_key_reused', label);
  }
  t.equal(await versions(server, 'items', 'r'), 1, 'nothing written by the refused requests');
  t.equal((await server.request('GET', '/v1/tables/items/rows/s')).status, 404);

  await ok(server, 'POST', '/v1/admin/users', { username: 'other', password: 'other-password-1', roles: ['writer'] });
  const other = await keyed(server, 'reuse', 'PUT', '/v1/tables/items/rows/r', { v: 1 }, {}, basicAuth('other', 'other-password-1'));
  t.equal(other.status, 200, "another user's key of the same name is their own: it writes");
  t.notOk(other.headers['idempotent-replayed']);
  t.equal(await versions(server, 'items', 'r'), 2);
});

t.test('a refused request stores nothing: its retry runs again', async (t) => {
  const missing = await keyed(server, 'retry-1', 'DELETE', '/v1/tables/items/rows/later');
  t.equal(missing.status, 404);
  await ok(server, 'PUT', '/v1/tables/items/rows/later', { v: 1 });
  const again = await keyed(server, 'retry-1', 'DELETE', '/v1/tables/items/rows/later');
  t.equal(again.status, 200, 'the same request, now possible, runs');
  t.notOk(again.headers['idempotent-replayed']);

  const noTable = await keyed(server, 'retry-2', 'PUT', '/v1/tables/notyet/rows/x', { v: 1 });
  t.equal(noTable.status, 404);
  await ok(server, 'POST', '/v1/tables', { name: 'notyet', primaryKey: 'id' });
  t.equal((await keyed(server, 'retry-2', 'PUT', '/v1/tables/notyet/rows/x', { v: 1 })).status, 201);

  const badBatch = { ops: [{ op: 'put', table: 'items', key: 'bb', doc: { v: 1 } }, { op: 'delete', table: 'items', key: 'never' }] };
  const failed = await keyed(server, 'retry-3', 'POST', '/v1/batch', badBatch);
  t.equal(failed.status, 404, 'a failing batch');
  await ok(server, 'PUT', '/v1/tables/items/rows/never', { v: 0 });
  const passed = await keyed(server, 'retry-3', 'POST', '/v1/batch', badBatch);
  t.equal(passed.status, 200, 'runs again once it can pass');
  t.notOk(passed.headers['idempotent-replayed']);
});

t.test('a write inside a transaction stores its answer with the commit, or never', async (t) => {
  const tx = (await ok(server, 'POST', '/v1/transactions', {})).id as string;
  const inside = await keyed(server, 'in-tx', 'PUT', '/v1/tables/items/rows/t1', { v: 1 }, { 'transaction-id': tx });
  t.same(inside.json, { key: 't1', seq: null });
  await ok(server, 'POST', `/v1/transactions/${tx}/commit`);
  const replay = await keyed(server, 'in-tx', 'PUT', '/v1/tables/items/rows/t1', { v: 1 });
  t.same(shape(replay), shape(inside), 'after the commit, the answer replays');
  t.equal(replay.headers['idempotent-replayed'], 'true');
  t.equal(await versions(server, 'items', 't1'), 1);

  const rolled = (await ok(server, 'POST', '/v1/transactions', {})).id as string;
  t.equal((await keyed(server, 'rolled', 'PUT', '/v1/tables/items/rows/t2', { v: 1 }, { 'transaction-id': rolled })).status, 201);
  await ok(server, 'POST', `/v1/transactions/${rolled}/rollback`);
  const rerun = await keyed(server, 'rolled', 'PUT', '/v1/tables/items/rows/t2', { v: 1 });
  t.equal(rerun.status, 201, 'a rolled-back write stored nothing: it runs');
  t.equal(rerun.json.seq === null, false);
  t.notOk(rerun.headers['idempotent-replayed']);
});

t.test('one commit records every entry of its transaction: keyed writes, the keyed commit, none rolled back to a savepoint', async (t) => {
  const tx = (await ok(server, 'POST', '/v1/transactions', {})).id as string;
  const created = await keyed(server, 'many-1', 'PUT', '/v1/tables/items/rows/m1', { v: 1 }, { 'transaction-id': tx });
  const replaced = await keyed(server, 'many-2', 'PUT', '/v1/tables/items/rows/m1', { v: 2 }, { 'transaction-id': tx });
  await ok(server, 'POST', `/v1/transactions/${tx}/savepoints`, { name: 'sp' });
  t.equal((await keyed(server, 'many-3', 'PUT', '/v1/tables/items/rows/m3', { v: 3 }, { 'transaction-id': tx })).status, 201);
  await ok(server, 'POST', `/v1/transactions/${tx}/savepoints/sp/rollback`);
  const commit = await keyed(server, 'many-commit', 'POST', `/v1/transactions/${tx}/commit`);
  t.equal(commit.status, 200);
  t.same([created.status, replaced.status], [201, 200], 'each write answered as it was made');
  for (const [key, first, body] of [
    ['many-1', created, { v: 1 }],
    ['many-2', replaced, { v: 2 }],
  ] as const) {
    const replay = await keyed(server, key, 'PUT', '/v1/tables/items/rows/m1', body);
    t.same(shape(replay), shape(first), `${key} replays its own answer`);
    t.equal(replay.headers['idempotent-replayed'], 'true');
  }
  const commitReplay = await keyed(server, 'many-commit', 'POST', `/v1/transactions/${tx}/commit`);
  t.same(shape(commitReplay), shape(commit), 'the commit replays its answer');
  t.equal((await versions(server, 'items', 'm1')), 1, 'the replays wrote nothing');
  const rerun = await keyed(server, 'many-3', 'PUT', '/v1/tables/items/rows/m3', { v: 3 });
  t.equal(rerun.status, 201, 'the write rolled back to the savepoint stored nothing: it runs');
  t.notOk(rerun.headers['idempotent-replayed']);
});

t.test('a repeat while the first request runs is 409 idempotency_in_progress, and a replay once it is answered', async (t) => {
  const holder = (await ok(server, 'POST', '/v1/transactions', {})).id as string;
  await server.request('PUT', '/v1/tables/items/rows/locked', { body: { v: 0 }, headers: { 'transaction-id': holder } });
  // The first request waits for the row's lock; its repeats arrive meanwhile.
  const first = keyed(server, 'slow', 'PUT', '/v1/tables/items/rows/locked', { v: 1 });
  await sleep(200);
  const repeat = await keyed(server, 'slow', 'PUT', '/v1/tables/items/rows/locked', { v: 1 });
  t.equal(repeat.status, 409);
  t.equal(repeat.json.code, 'idempotency_in_progress');
  await ok(server, 'POST', `/v1/transactions/${holder}/commit`);
  const answered = await first;
  t.equal(answered.status, 200, answered.text);
  const later = await keyed(server, 'slow', 'PUT', '/v1/tables/items/rows/locked', { v: 1 });
  t.same(shape(later), shape(answered));
  t.equal(await versions(server, 'items', 'locked'), 2, "the holder's write and the keyed one, once");
});

t.test('identical requests raced with one key write once: the others replay or are told it is in progress', async (t) => {
  const race = async (label: string, send: () => Promise<Response>, check: () => Promise<void>): Promise<void> => {
    const answers = await Promise.all(Array.from({ length: 12 }, send));
    const done = answers.filter((a) => a.status >= 200 && a.status < 300);
    const busy = answers.filter((a) => a.status === 409 && a.json.code === 'idempotency_in_progress');
    t.equal(done.length + busy.length, answers.length, `${label}: only answers and in-progress refusals (${answers.map((a) => a.status)})`);
    t.equal(done.filter((a) => a.headers['idempotent-replayed'] !== 'true').length, 1, `${label}: one request ran`);
    t.equal(new Set(done.map((a) => JSON.stringify(shape(a)))).size, 1, `${label}: every answer is the first one`);
    await check();
  };
  await race('PUT', () => keyed(server, 'race-put', 'PUT', '/v1/tables/items/rows/raced', { v: 1 }), async () => {
    t.equal(await versions(server, 'items', 'raced'), 1, 'PUT: one version');
  });
  await race('PATCH', () => keyed(server, 'race-patch', 'PATCH', '/v1/tables/items/rows/raced', { n: 1 }), async () => {
    t.equal(await versions(server, 'items', 'raced'), 2, 'PATCH: one more version');
  });
  await race('batch', () => keyed(server, 'race-batch', 'POST', '/v1/batch', { ops: [{ op: 'put', table: 'items', key: 'raced-batch', doc: { v: 1 } }] }), async () => {
    t.equal(await versions(server, 'items', 'raced-batch'), 1, 'batch: one version');
  });
  await race('fork', () => keyed(server, 'race-fork', 'POST', '/v1/tables/items/fork', { name: 'raced_copy', asOf: 1 }), async () => {
    t.equal((await server.request('GET', '/v1/tables/raced_copy')).status, 200, 'fork: one table, no table_exists');
  });
  // Retried until no request is in progress any more: then every answer is the stored one.
  let settled: Response;
  do settled = await keyed(server, 'race-put', 'PUT', '/v1/tables/items/rows/raced', { v: 1 });
  while (settled.status === 409);
  t.equal(settled.headers['idempotent-replayed'], 'true');
});

t.test('an acknowledged keyed write survives a SIGKILL, with or without a checkpoint: its retry replays, nothing is written twice', async (t) => {
  let node = await startServer();
  t.teardown(() => node.kill());
  await ok(node, 'POST', '/v1/tables', { name: 'durable', primaryKey: 'id' });
  const put = await keyed(node, 'crash-put', 'PUT', '/v1/tables/durable/rows/x', { v: 1 });
  const batch = await keyed(node, 'crash-batch', 'POST', '/v1/batch', { ops: [{ op: 'put', table: 'durable', key: 'y', doc: { v: 1 } }] });
  const fork = await keyed(node, 'crash-fork', 'POST', '/v1/tables/durable/fork', { name: 'durable_copy', asOf: put.json.seq });
  // Keys whose commits a checkpoint covers are kept by it, not only by the log after it.
  await ok(node, 'POST', '/v1/admin/checkpoint');
  const tx = (await ok(node, 'POST', '/v1/transactions', {})).id as string;
  await node.request('PUT', '/v1/tables/durable/rows/z', { body: { v: 1 }, headers: { 'transaction-id': tx } });
  const commit = await keyed(node, 'crash-commit', 'POST', `/v1/transactions/${tx}/commit`);
  const restore = await keyed(node, 'crash-restore', 'POST', '/v1/tables/durable/restore', { asOf: put.json.seq });
  const firsts = { put, batch, fork, commit, restore };
  for (const [label, answer] of Object.entries(firsts)) t.ok(answer.status >= 200 && answer.status < 300, `${label}: ${answer.status} ${answer.text}`);

  for (let round = 0; round < 2; round++) {
    await node.kill();
    node = await startServer({ dataDir: node.dataDir });
    const again = {
      put: await keyed(node, 'crash-put', 'PUT', '/v1/tables/durable/rows/x', { v: 1 }),
      batch: await keyed(node, 'crash-batch', 'POST', '/v1/batch', { ops: [{ op: 'put', table: 'durable', key: 'y', doc: { v: 1 } }] }),
      fork: await keyed(node, 'crash-fork', 'POST', '/v1/tables/durable/fork', { name: 'durable_copy', asOf: put.json.seq }),
      commit: await keyed(node, 'crash-commit', 'POST', `/v1/transactions/${tx}/commit`),
      restore: await keyed(node, 'crash-restore', 'POST', '/v1/tables/durable/restore', { asOf: put.json.seq }),
    };
    for (const [label, answer] of Object.entries(again)) {
      t.same(shape(answer), shape(firsts[label as keyof typeof firsts]), `round ${round}, ${label}: replayed after the restart`);
      t.equal(answer.headers['idempotent-replayed'], 'true', `round ${round}, ${label}`);
    }
    t.equal(await versions(node, 'durable', 'x'), 1, 'the PUT wrote one version');
    // y and z came after the restore's point: it deleted them.
    t.equal(await versions(node, 'durable', 'y'), 2, 'the batch and the restore wrote once each');
    t.equal(await versions(node, 'durable', 'z'), 2, 'the commit and the restore wrote once each');
    if (round === 0) await ok(node, 'POST', '/v1/admin/checkpoint');
  }
});

t.test('an answer stored by an older version (JSON inside the catalog change) still replays after an upgrade', async (t) => {
  let node = await startServer();
  t.teardown(() => node.kill());
  await ok(node, 'POST', '/v1/tables', { name: 'upgraded', primaryKey: 'id' });
  await node.stop();
  // Appends the record an older version wrote for a keyed PUT whose answer was lost: only its entry (code 3, the
  // change as JSON, the answer the JSON text of { status, json, headers }); the row is left out, so a replay shows.
  const walDir = path.join(node.dataDir, 'wal');
  const last = path.join(walDir, fs.readdirSync(walDir).filter((name) => name.endsWith('.wal')).sort().at(-1)!);
  let lastSeq = 0;
  for (const read of decodeFrames(fs.readFileSync(last))) if (read.kind === 'frame') lastSeq = parseRecord(read.payload).seq;
  const seq = lastSeq + 1;
  const body = '{"v":1}';
  const stored = { status: 201, json: JSON.stringify({ key: 'old', seq }), headers: { etag: `"${seq}"` } };
  const change = {
    kind: 'idempotency',
    user: 'admin',
    key: 'old-version-key',
    fingerprint: createHash('sha256').update(`PUT\n/v1/tables/upgraded/rows/old\n`).update(body).digest('base64url'),
    answer: JSON.stringify(stored),
    expiresAt: Date.now() + 3_600_000,
  };
  const json = Buffer.from(JSON.stringify(change), 'utf8');
  const payload = Buffer.alloc(1 + 8 + 8 + 8 + 4 + 1 + 4 + json.length);
  let at = payload.writeUInt8(0xd3, 0);
  at = payload.writeDoubleLE(seq, at);
  at = payload.writeDoubleLE(Date.now(), at);
  at = payload.writeDoubleLE(lastSeq, at);
  at = payload.writeUInt32LE(1, at);
  at = payload.writeUInt8(3, at);
  at = payload.writeUInt32LE(json.length, at);
  json.copy(payload, at);
  fs.appendFileSync(last, encodeFrame(payload));

  node = await startServer({ dataDir: node.dataDir });
  const retry = await keyed(node, 'old-version-key', 'PUT', '/v1/tables/upgraded/rows/old', body);
  t.equal(retry.status, 201);
  t.equal(retry.text, stored.json, 'the stored body, byte for byte');
  t.equal(retry.headers.etag, stored.headers.etag);
  t.equal(retry.headers['idempotent-replayed'], 'true');
  t.equal((await node.request('GET', '/v1/tables/upgraded/rows/old')).status, 404, 'the replay wrote nothing');
  const reused = await keyed(node, 'old-version-key', 'PUT', '/v1/tables/upgraded/rows/old', '{"v":2}');
  t.equal(reused.status, 422, 'its fingerprint still tells another request');
});

t.test('stored answers expire after --idempotency-ttl-ms: a retry after that runs again', async (t) => {
  const node = await startServer({ args: ['--idempotency-ttl-ms', '200'] });
  t.teardown(() => node.kill());
  await ok(node, 'POST', '/v1/tables', { name: 'brief', primaryKey: 'id' });
  const first = await keyed(node, 'short', 'PUT', '/v1/tables/brief/rows/k', { v: 1 });
  t.equal(first.status, 201);
  await sleep(400);
  const later = await keyed(node, 'short', 'PUT', '/v1/tables/brief/rows/k', { v: 1 });
  t.equal(later.status, 200, 'the retry ran: the row existed, so 200');
  t.notOk(later.headers['idempotent-replayed']);
  t.equal(await versions(node, 'brief', 'k'), 2);
  // An expired key is free for another request too.
  await sleep(400);
  const other = await keyed(node, 'short', 'PUT', '/v1/tables/brief/rows/other', { v: 2 });
  t.equal(other.status, 201);
});

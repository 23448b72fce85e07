// driftdb export / import / doctor as a user runs them: real processes on real data dirs. Round trips of the current
// state and of every version, refused lines with their number and nothing of their batch written, the data-dir lock,
// and progress shown on a terminal only.

import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { openDatabase, type Database } from '../../src/engine/index.js';
import { lockFileName } from '../../src/service/data-dir-lock.js';
import { Progress } from '../../src/observability/progress.js';
import { cliPath, makeTempDir, spawnServer } from '../helpers/server.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function driftdb(args: string[], input?: string): Promise<Run> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('DRIFTDB_') && value !== undefined) env[name] = value;
  const child = spawn(process.execPath, [cliPath, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdin.end(input ?? '');
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

async function withDatabase<T>(dataDir: string, work: (db: Database) => Promise<T>): Promise<T> {
  const db = await openDatabase({ dataDir });
  try {
    return await work(db);
  } finally {
    await db.close();
  }
}

/** A table with live rows, a patched row, a deleted one and a key re-created after its delete. */
async function seed(dataDir: string): Promise<{ middleSeq: number }> {
  return withDatabase(dataDir, async (db) => {
    await db.createTable({ name: 'users', primaryKey: 'id', indexes: ['city'] });
    for (let i = 0; i < 30; i++) await db.put({ table: 'users', key: `u${i}`, doc: { city: i % 2 === 0 ? 'Paris' : 'Rome', n: i } });
    const middleSeq = db.durableSeq;
    await db.patch({ table: 'users', key: 'u1', patch: { city: 'Oslo' } });
    await db.delete({ table: 'users', key: 'u2' });
    await db.delete({ table: 'users', key: 'u3' });
    await db.put({ table: 'users', key: 'u3', doc: { city: 'Lima', back: true } });
    await db.put({ table: 'users', key: '7', doc: { id: 7, numeric: true } });
    return { middleSeq };
  });
}

const lines = (text: string): unknown[] => text.trim().split('\n').filter((line) => line !== '').map((line) => JSON.parse(line));

t.test('export → import round-trips the current state, and the state as of a seq', async (t) => {
  const source = path.join(makeTempDir(), 'a');
  const { middleSeq } = await seed(source);
  const exported = await driftdb(['export', '--data-dir', source, '--table', 'users']);
  t.equal(exported.code, 0, exported.stderr);
  const rows = lines(exported.stdout) as Array<{ id: unknown }>;
  t.equal(rows.length, 30, 'every live row, once');
  t.match(exported.stderr, /exported 30 rows of users/);

  const target = path.join(makeTempDir(), 'b');
  const file = path.join(makeTempDir(), 'users.ndjson');
  writeFileSync(file, exported.stdout);
  const imported = await driftdb(['import', '--data-dir', target, '--table', 'users', '--primary-key', 'id', '--file', file, '--batch-rows', '7']);
  t.equal(imported.code, 0, imported.stderr);
  t.match(imported.stderr, /imported 30 rows into users/);
  t.same(lines((await driftdb(['export', '--data-dir', target, '--table', 'users'])).stdout), rows, 'the same rows come back');
  await withDatabase(target, async (db) => {
    t.equal(db.getTable('users').rowCount, 30);
    t.same(db.get({ table: 'users', key: '7' }).doc, { id: 7, numeric: true }, 'a numeric key stays a number');
    t.equal(db.durableSeq, 1 + Math.ceil(30 / 7), 'one commit per batch of 7, after the table');
  });

  const then = await driftdb(['export', '--data-dir', source, '--table', 'users', '--as-of', String(middleSeq), '--out', path.join(makeTempDir(), 'then.ndjson')]);
  t.equal(then.code, 0, then.stderr);
  t.equal(then.stdout, '', '--out leaves stdout empty');
  const stdin = await driftdb(['import', '--data-dir', path.join(makeTempDir(), 'c'), '--table', 'users', '--primary-key', 'id'], (await driftdb(['export', '--data-dir', source, '--table', 'users', '--as-of', String(middleSeq)])).stdout);
  t.match(stdin.stderr, /imported 30 rows/, 'asOf: the 30 rows before the patch and deletes, read from stdin');
});

t.test('with --history every version is exported in commit order and replayed, each as a commit of its key', async (t) => {
  const source = path.join(makeTempDir(), 'a');
  await seed(source);
  const exported = await driftdb(['export', '--data-dir', source, '--table', 'users', '--history']);
  t.equal(exported.code, 0, exported.stderr);
  const versions = lines(exported.stdout) as Array<{ key: string; seq: number; ts: string; op: string; doc: unknown }>;
  t.equal(versions.length, 35, '31 puts, a patch, two deletes and a put again');
  t.same(versions.map((v) => v.seq), [...versions.map((v) => v.seq)].sort((a, b) => a - b), 'in commit order');
  t.match(versions.find((v) => v.key === 'u2' && v.op === 'delete'), { doc: null });

  const target = path.join(makeTempDir(), 'b');
  const imported = await driftdb(['import', '--data-dir', target, '--table', 'users', '--primary-key', 'id', '--history'], exported.stdout);
  t.equal(imported.code, 0, imported.stderr);
  const again = lines((await driftdb(['export', '--data-dir', target, '--table', 'users', '--history'])).stdout) as typeof versions;
  t.equal(again.length, versions.length, 'as many versions');
  const byKey = (list: typeof versions) => {
    const keys = new Map<string, typeof versions>();
    for (const v of list) keys.set(v.key, [...(keys.get(v.key) ?? []), v]);
    return keys;
  };
  const before = byKey(versions);
  const after = byKey(again);
  for (const [key, list] of before) {
    t.same(after.get(key)?.map((v) => [v.op, v.doc]), list.map((v) => [v.op, v.doc]), `${key}: the same versions in the same order`);
  }
  // Replayed in commit order: walking the original lines, the new seqs of their versions never go back. (Versions of
  // different keys may share a commit now: a batch holds at most one version per key.)
  const next = new Map([...after].map(([key, list]) => [key, list.map((v) => v.seq)]));
  const newSeqs = versions.map((v) => next.get(v.key)!.shift()!);
  t.same(newSeqs, [...newSeqs].sort((a, b) => a - b), 'the new seqs follow the original commit order');
  await withDatabase(target, async (db) => {
    for (const key of ['u1', 'u2', 'u3']) {
      t.same(
        db.history({ table: 'users', key }).versions.map((v) => [v.op === 'patch' ? 'put' : v.op, v.doc]),
        (await withDatabase(source, async (old) => old.history({ table: 'users', key }).versions.map((v) => [v.op === 'patch' ? 'put' : v.op, v.doc]))),
        `${key}: every version`,
      );
    }
  });
});

t.test('a malformed line is refused with its number, and nothing of its batch is written', async (t) => {
  const target = path.join(makeTempDir(), 'b');
  const input = ['{"id":"a"}', '{"id":"b"}', '{"id":"c"}', '{"id": oops}', '{"id":"e"}'].join('\n');
  const run = await driftdb(['import', '--data-dir', target, '--table', 't', '--primary-key', 'id', '--batch-rows', '2'], input);
  t.equal(run.code, 1);
  t.match(run.stderr, /line 4: not valid JSON .*Nothing of its batch \(from line 3\) was written; the 2 rows of the lines before it are imported/);
  await withDatabase(target, async (db) => t.same(db.scan({ table: 't' }).rows.map((r) => r['id']), ['a', 'b'], 'the first batch only'));

  const missingKey = await driftdb(['import', '--data-dir', target, '--table', 't'], '{"id":"z"}\n{"name":"no id"}\n');
  t.match(missingKey.stderr, /line 2: no "id" member/);
  await withDatabase(target, async (db) => {
    await db.createTable({ name: 's', primaryKey: 'id', schema: { type: 'object', properties: { n: { type: 'integer' } } } });
  });
  const bySchema = await driftdb(['import', '--data-dir', target, '--table', 's'], '{"id":"1","n":1}\n{"id":"2","n":"two"}\n{"id":"3","n":3}\n');
  t.equal(bySchema.code, 1);
  t.match(bySchema.stderr, /line 2: .*Nothing of its batch \(from line 1\) was written; nothing was imported/);
  await withDatabase(target, async (db) => t.equal(db.getTable('s').rowCount, 0, 'the database refused the batch whole'));
  const noTable = await driftdb(['import', '--data-dir', target, '--table', 'nope'], '{"id":1}\n');
  t.equal(noTable.code, 1);
  t.match(noTable.stderr, /Table 'nope' does not exist/);
  const noFlag = await driftdb(['export', '--data-dir', target]);
  t.equal(noFlag.code, 2);
  t.match(noFlag.stderr, /--table is required/);
});

t.test('a data dir in use by a server is refused by export, import, doctor and a second server; a stale lock is taken over', async (t) => {
  const dataDir = path.join(makeTempDir(), 'data');
  const server = spawnServer({ dataDir });
  await server.listening;
  for (const args of [['export', '--table', 'x'], ['import', '--table', 'x'], ['doctor']]) {
    const run = await driftdb([...args, '--data-dir', dataDir]);
    t.equal(run.code, 1, `${args[0]} exits 1`);
    t.match(run.stderr, new RegExp(`the data dir .* is in use by process ${server.proc.pid} \\(driftdb serve, since .*\\): stop it first`), args[0]!);
  }
  const second = spawnServer({ dataDir });
  t.equal((await second.exited).code, 1, 'a second server on the same data dir does not start');
  t.match(second.stderr(), /in use by process/);
  server.proc.kill('SIGKILL');
  await server.exited;
  // The lock a crash left names a process that is gone.
  const after = await driftdb(['doctor', '--data-dir', dataDir]);
  t.equal(after.code, 0, after.stderr);
  t.match(after.stdout, /healthy/);
  writeFileSync(path.join(dataDir, lockFileName), 'garbage');
  t.equal((await driftdb(['doctor', '--data-dir', dataDir])).code, 0, 'an unreadable lock is no holder');
});

t.test('progress: redrawn in place on a terminal, at most once per interval; nothing on a pipe', async (t) => {
  let now = 0;
  const written: string[] = [];
  const tty = new Progress({ stream: { isTTY: true, write: (text: string) => written.push(text) }, intervalMs: 200, now: () => now });
  let described = 0;
  const describe = () => `step ${++described}`;
  tty.update(describe);
  t.same(written, [], 'nothing before the first interval');
  now = 200;
  tty.update(describe);
  now = 300;
  tty.update(describe);
  now = 450;
  tty.update(describe);
  tty.end();
  t.same(written, ['\rstep 1\u001b[K', '\rstep 2\u001b[K', '\r\u001b[K'], 'redrawn with \\r, erased at the end');
  t.equal(described, 2, 'the text is made only when shown');
  const piped: string[] = [];
  const pipe = new Progress({ stream: { isTTY: false, write: (text: string) => piped.push(text) }, now: () => now });
  now = 1_000_000;
  pipe.update(describe);
  pipe.end();
  t.same(piped, [], 'silent on a pipe');
  const logged: string[] = [];
  const plain = new Progress({ stream: { write: (text: string) => logged.push(text) }, plainIntervalMs: 10_000, now: () => now });
  now += 10_000;
  plain.update(() => 'still going');
  t.same(logged, ['still going\n'], 'a plain line when asked for');

  const dataDir = path.join(makeTempDir(), 'a');
  await seed(dataDir);
  const doctor = await driftdb(['doctor', '--data-dir', dataDir]);
  t.equal(doctor.code, 0);
  t.notMatch(doctor.stderr, /\r/, 'doctor draws no progress on a pipe');
});

t.test('doctor and export leave a data dir that does not exist alone', async (t) => {
  const absent = path.join(makeTempDir(), 'absent');
  const doctor = await driftdb(['doctor', '--data-dir', absent]);
  t.equal(doctor.code, 1);
  t.match(doctor.stdout, /does not exist/);
  const exported = await driftdb(['export', '--data-dir', absent, '--table', 't']);
  t.equal(exported.code, 1);
  t.match(exported.stderr, /the data dir .* does not exist/);
  t.notOk(existsSync(absent), 'nothing was created');
});

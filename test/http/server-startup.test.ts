// Starting and checking the real process: bad flags exit 2, a corrupt log exits 1 naming file and offset (and
// `driftdb doctor` agrees), and the generated admin password is printed once, on the first start only.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { basicAuth, cliPath, makeTempDir, spawnServer, startServer } from '../helpers/server.js';

function runCli(args: string[], env: Record<string, string> = {}): { code: number | null; stdout: string; stderr: string } {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('DRIFTDB_')));
  const result = spawnSync(process.execPath, [cliPath, ...args], { encoding: 'utf8', env: { ...inherited, ...env }, timeout: 30_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** A data dir holding a table and a few rows, written by a real server that then stopped cleanly. */
async function populatedDataDir(): Promise<string> {
  const server = await startServer();
  await server.request('POST', '/v1/tables', { body: { name: 'notes', primaryKey: 'id' } });
  for (let i = 0; i < 5; i++) await server.request('PUT', `/v1/tables/notes/rows/n${i}`, { body: { text: `note ${i}` } });
  await server.stop();
  return server.dataDir;
}

t.test('a bad flag or variable exits 2 with a message naming it, before listening', async (t) => {
  const bad = spawnServer({ args: ['--port', 'eighty'] });
  t.equal((await bad.exited).code, 2);
  t.match(bad.stderr(), /--port: expected a whole number, got "eighty"/);
  t.notMatch(bad.stdout(), /listening/);
  const badEnv = spawnServer({ env: { DRIFTDB_LOCK_TIMEOUT_MS: 'soon' } });
  t.equal((await badEnv.exited).code, 2);
  t.match(badEnv.stderr(), /DRIFTDB_LOCK_TIMEOUT_MS/);
  const unknown = runCli(['frobnicate']);
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /unknown command "frobnicate"/);
});

t.test('--help lists every flag with its environment variable and exits 0', async (t) => {
  const help = runCli(['serve', '--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /--data-dir DIR\s+DRIFTDB_DATA_DIR, default \.\/data/);
  t.match(help.stdout, /--checkpoint-interval-mb N/);
  t.equal(runCli(['--help']).code, 0);
});

t.test('doctor exits 0 on a healthy data dir; a record damaged before the tail makes doctor and serve exit 1 naming file and offset', async (t) => {
  const dataDir = await populatedDataDir();
  const healthy = runCli(['doctor', '--data-dir', dataDir]);
  t.equal(healthy.code, 0, healthy.stdout + healthy.stderr);
  t.match(healthy.stdout, /healthy/);

  const walDir = path.join(dataDir, 'wal');
  const segment = path.join(walDir, fs.readdirSync(walDir).filter((name) => name.endsWith('.wal')).sort()[0]!);
  const bytes = fs.readFileSync(segment);
  // Flip a byte inside the first record's payload (after its 8-byte header); later records stay intact.
  const offsetInPayload = 8 + 3;
  bytes[offsetInPayload] = bytes[offsetInPayload]! ^ 0xff;
  fs.writeFileSync(segment, bytes);
  // Checkpoints could let recovery skip the damaged record; remove them so the log is the only source.
  fs.rmSync(path.join(dataDir, 'checkpoints'), { recursive: true, force: true });

  const corrupt = runCli(['doctor', '--data-dir', dataDir]);
  t.equal(corrupt.code, 1, corrupt.stdout + corrupt.stderr);
  t.match(corrupt.stdout, new RegExp(`${path.basename(segment)} at offset 0`));
  t.match(corrupt.stdout, /CORRUPT/);

  const server = spawnServer({ dataDir });
  const { code } = await server.exited;
  t.equal(code, 1, 'the server refuses to serve');
  t.match(server.stderr(), new RegExp(`corrupt log record in .*${path.basename(segment)} at offset 0`));
  t.notMatch(server.stderr(), /\n\s+at /, 'a message, not a stack trace');
});

t.test('doctor on a data dir that does not exist exits 1', async (t) => {
  const result = runCli(['doctor', '--data-dir', path.join(makeTempDir(), 'absent')]);
  t.equal(result.code, 1);
  t.match(result.stdout, /does not exist/);
});

t.test('without DRIFTDB_ADMIN_PASSWORD the first start prints a random admin password once, and never again', async (t) => {
  const dataDir = path.join(makeTempDir(), 'data');
  const first = await startServer({ dataDir, env: { DRIFTDB_ADMIN_PASSWORD: undefined } });
  t.teardown(() => first.kill());
  const match = /created user "admin" with password (\S+)/.exec(first.stdout());
  t.ok(match, 'the password is printed');
  const password = match![1]!;
  t.ok(password.length >= 16, 'long enough');
  t.equal(first.stdout().split(password).length - 1, 1, 'printed exactly once, and in no log line');
  t.equal((await first.request('GET', '/v1/tables', { auth: basicAuth('admin', password) })).status, 200, 'it works');
  t.equal((await first.request('GET', '/v1/tables')).status, 401, 'no fixed default password');
  t.equal(await first.stop(), 0);
  // Users live in the database log now: the password is in no file of the data dir, only its scrypt hash.
  const files = fs.readdirSync(dataDir, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile());
  t.ok(files.some((entry) => entry.name.endsWith('.wal')), 'the log was read');
  for (const entry of files) {
    t.notOk(fs.readFileSync(path.join(entry.parentPath, entry.name)).includes(password), `${entry.name} does not hold the password`);
  }
  t.notOk(fs.existsSync(path.join(dataDir, 'users.json')), 'no users.json any more');

  const second = await startServer({ dataDir, env: { DRIFTDB_ADMIN_PASSWORD: undefined } });
  t.teardown(() => second.kill());
  t.notMatch(second.stdout(), /password/, 'nothing printed on a later start');
  t.equal((await second.request('GET', '/v1/tables', { auth: basicAuth('admin', password) })).status, 200);

  const other = await startServer({ env: { DRIFTDB_ADMIN_PASSWORD: undefined } });
  t.teardown(() => other.kill());
  const otherPassword = /created user "admin" with password (\S+)/.exec(other.stdout())?.[1];
  t.not(otherPassword, password, 'each data dir gets its own random password');
});

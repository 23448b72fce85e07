// The audit log against the real server: the chain verifies after rotation and restarts; tampering with the files
// while the server is down is named by /verify and by `driftdb audit verify` (a server whose log fails still starts
// and says so); the HMAC key must live outside the data dir; the log can be turned off and on again.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { basicAuth, cliPath, makeTempDir, sleep, spawnServer, startServer, type TestServer } from '../helpers/server.js';

async function serve(t: Test, args: string[] = [], dataDir?: string): Promise<TestServer> {
  const server = await startServer({ args: ['--log-level', 'info', ...args], ...(dataDir ? { dataDir } : {}) });
  t.teardown(() => server.kill());
  return server;
}

/** `driftdb audit verify` on a stopped server's data dir: its exit code and the JSON it prints. */
function verifyOffline(dataDir: string, extra: string[] = []): { code: number | null; result: any; stderr: string } {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('DRIFTDB_')));
  const run = spawnSync(process.execPath, [cliPath, 'audit', 'verify', '--data-dir', dataDir, ...extra], { encoding: 'utf8', env: inherited, timeout: 30_000 });
  let result: any;
  try {
    result = JSON.parse(run.stdout);
  } catch {
    result = undefined;
  }
  return { code: run.status, result, stderr: run.stderr };
}

function auditLines(file: string): string[] {
  return fs.readFileSync(file, 'utf8').split('\n').filter((line) => line !== '');
}

/** `count` access_denied entries (a reader asking for admin routes: no password hashing), 16 requests at a time. */
async function denials(server: TestServer, auth: string, count: number): Promise<void> {
  const longId = 'x'.repeat(120);
  for (let sent = 0; sent < count; sent += 16) {
    await Promise.all(
      Array.from({ length: Math.min(16, count - sent) }, (_, i) =>
        server.request('GET', '/v1/admin/stats', { auth, headers: { 'x-request-id': `${longId}-${sent + i}` } }),
      ),
    );
  }
}

t.test('the chain verifies across rotated files and restarts, online and offline', async (t) => {
  const server = await serve(t, ['--audit-log-rotate-mb', '1']);
  const created = await server.request('POST', '/v1/admin/users', { body: { username: 'rita', password: 'rita-password', roles: ['reader'] } });
  t.equal(created.status, 201);
  await denials(server, basicAuth('rita', 'rita-password'), 2600);
  const verified = await server.request('GET', '/v1/admin/audit/verify');
  t.equal(verified.json.valid, true, verified.text);
  t.ok(verified.json.files >= 2, `${verified.json.files} files`);
  t.ok(verified.json.entries > 2600);
  const stats = (await server.request('GET', '/v1/admin/audit/stats')).json;
  t.ok(stats.rotatedFiles >= 1);
  t.notMatch(JSON.stringify(stats) + verified.text, new RegExp(server.dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'no server path in the answers');
  t.ok(fs.existsSync(path.join(server.dataDir, 'audit.log.1')), 'rotated as audit.log.1');
  t.equal(await server.stop(), 0);

  const offline = verifyOffline(server.dataDir);
  t.equal(offline.code, 0, offline.stderr);
  t.match(offline.result, { valid: true, entries: Number, files: verified.json.files });

  const again = await serve(t, ['--audit-log-rotate-mb', '1'], server.dataDir);
  await again.request('GET', '/v1/admin/stats', { auth: basicAuth('rita', 'rita-password') });
  const after = await again.request('GET', '/v1/admin/audit/verify');
  t.equal(after.json.valid, true, after.text);
  t.ok(after.json.entries > offline.result.entries, 'the chain went on after the restart');
  t.match((await again.request('GET', '/v1/admin/audit/stats')).json.verificationAtStart, { valid: true });
});

t.test('tampering while the server is down: it still starts, warns, and /verify and the CLI name the entry', async (t) => {
  const server = await serve(t);
  for (let i = 0; i < 6; i++) await server.request('GET', '/v1/tables', { auth: basicAuth(`nobody-${i}`, 'x') });
  t.equal(await server.stop(), 0);
  const file = path.join(server.dataDir, 'audit.log');
  const good = auditLines(file);
  t.equal(verifyOffline(server.dataDir).code, 0);

  const target = good.findIndex((line) => line.includes('nobody-2'));
  const edited = good.map((line, i) => (i === target ? line.replace('nobody-2', 'somebody') : line));
  fs.writeFileSync(file, `${edited.join('\n')}\n`);
  const editedId = JSON.parse(good[target]!).id;
  const offline = verifyOffline(server.dataDir);
  t.equal(offline.code, 1);
  t.match(offline.result, { valid: false, firstInvalidId: editedId, reason: /edited/ });

  const restarted = await serve(t, [], server.dataDir);
  t.equal((await restarted.request('GET', '/readyz')).status, 200, 'the server starts anyway');
  const verify = await restarted.request('GET', '/v1/admin/audit/verify');
  t.match(verify.json, { valid: false, firstInvalidId: editedId });
  for (let i = 0; i < 100 && (await restarted.request('GET', '/v1/admin/audit/stats')).json.verificationAtStart === null; i++) await sleep(20);
  t.match((await restarted.request('GET', '/v1/admin/audit/stats')).json.verificationAtStart, { valid: false, firstInvalidId: editedId });
  t.match(restarted.stdout(), /FAILED verification/, 'and logs a warning');
  t.equal(await restarted.stop(), 0);

  // Every other kind of damage, judged offline on copies of the good file.
  const cases: Array<[string, string[], object]> = [
    ['a deleted line', good.filter((_, i) => i !== 3), { firstInvalidId: JSON.parse(good[4]!).id }],
    ['an inserted line', [...good.slice(0, 3), good[1]!, ...good.slice(3)], { firstInvalidId: JSON.parse(good[1]!).id }],
    ['reordered lines', [good[0]!, good[2]!, good[1]!, ...good.slice(3)], { firstInvalidId: JSON.parse(good[2]!).id }],
    ['a cut-off tail', good.slice(0, good.length - 2), { firstInvalidId: null, truncated: true }],
  ];
  for (const [label, lines, expected] of cases) {
    fs.writeFileSync(file, `${lines.join('\n')}\n`);
    const result = verifyOffline(server.dataDir);
    t.equal(result.code, 1, label);
    t.match(result.result, { valid: false, ...expected }, label);
  }
});

t.test('an HMAC key: read before listening, refused inside the data dir or when short, needed to verify', async (t) => {
  const keyDir = makeTempDir();
  const key = path.join(keyDir, 'audit.key');
  fs.writeFileSync(key, `${'ab'.repeat(32)}\n`, { mode: 0o600 });

  const short = path.join(keyDir, 'short.key');
  fs.writeFileSync(short, 'too-short');
  const refusedShort = spawnServer({ args: ['--audit-hmac-key-file', short] });
  t.equal((await refusedShort.exited).code, 2);
  t.match(refusedShort.stderr(), /--audit-hmac-key-file: the key must hold at least 32 bytes/);
  t.notMatch(refusedShort.stdout(), /listening/, 'before listening');

  const dataDir = path.join(makeTempDir(), 'data');
  fs.mkdirSync(dataDir, { recursive: true });
  const inside = path.join(dataDir, 'audit.key');
  fs.copyFileSync(key, inside);
  const refusedInside = spawnServer({ dataDir, args: ['--audit-hmac-key-file', inside] });
  t.equal((await refusedInside.exited).code, 2);
  t.match(refusedInside.stderr(), /outside the data dir/);
  const missing = spawnServer({ args: ['--audit-hmac-key-file', path.join(keyDir, 'absent.key')] });
  t.equal((await missing.exited).code, 2);
  t.match(missing.stderr(), /cannot read .*absent\.key \(ENOENT\)/);

  const server = await serve(t, ['--audit-hmac-key-file', key]);
  await server.request('GET', '/v1/tables', { auth: basicAuth('nobody', 'x') });
  t.match((await server.request('GET', '/v1/admin/audit/stats')).json, { hashing: 'hmac-sha256' });
  t.match((await server.request('GET', '/v1/admin/audit/verify')).json, { valid: true });
  t.equal(await server.stop(), 0);
  t.equal(verifyOffline(server.dataDir, ['--audit-hmac-key-file', key]).code, 0);
  t.match(verifyOffline(server.dataDir), { code: 1, result: { valid: false, firstInvalidId: 1, reason: /needs the key/ } });
});

t.test('--audit-log off records nothing; on again, the chain goes on and the switch is audited', async (t) => {
  const server = await serve(t, ['--audit-log', 'off']);
  await server.request('GET', '/v1/tables', { auth: basicAuth('nobody', 'x') });
  t.match((await server.request('GET', '/v1/admin/audit/stats')).json, { enabled: false, entries: 0 });
  t.same((await server.request('GET', '/v1/admin/audit')).json, { entries: [] });
  t.equal(await server.stop(), 0);
  t.notOk(fs.existsSync(path.join(server.dataDir, 'audit.log')), 'no file was written');
  const on = await serve(t, [], server.dataDir);
  const changed = (await on.request('GET', '/v1/admin/audit?type=config_changed')).json.entries;
  t.match(changed[0], { details: { changed: { auditLog: { from: 'off', to: 'on' } } } });
});

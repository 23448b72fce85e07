// Users, tokens and lockout over a real database: users live in the system table `_users` (and an older users.json
// is migrated on the first start), tokens are stored only as hashes and expire, and a lockout is per username.

import fs from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { openDatabase, type Database } from '../../src/engine/index.js';
import { LoginGuard } from '../../src/security/lockout.js';
import { hashPassword } from '../../src/security/password.js';
import { systemTables } from '../../src/security/system-tables.js';
import { TokenStore, tokenId, tokenPattern, tokensPerUserMax } from '../../src/security/tokens.js';
import { legacyUsersFileName, migratedUsersFileName, UserStore } from '../../src/security/users.js';

const quiet = { info() {}, warn() {} };

async function database(t: Test, dataDir = t.testdir()): Promise<{ db: Database; dataDir: string }> {
  const db = await openDatabase({ dataDir });
  t.teardown(() => db.close());
  return { db, dataDir };
}

function openUsers(db: Database, dataDir: string, adminPassword: string | null, announced: string[] = []) {
  return UserStore.open({ db, dataDir, adminPassword, announce: (line) => announced.push(line), logger: quiet });
}

t.test('an empty store gets the admin user, stored as a scrypt hash in _users, and the rows survive a restart', async (t) => {
  const dataDir = t.testdir();
  const first = await openDatabase({ dataDir });
  const announced: string[] = [];
  const opened = await openUsers(first, dataDir, null, announced);
  t.same(opened.created.map((user) => user.username), ['admin']);
  const password = /password (\S+)/.exec(announced[0]!)![1]!;
  t.ok(await opened.store.verify('admin', password));
  await opened.store.create({ username: 'wendy', password: 'wendy-password', roles: ['writer'], grants: ['orders'] });
  const row = first.get({ table: systemTables.users.name, key: 'wendy' }).doc;
  t.match(row, { username: 'wendy', roles: ['writer'], grants: ['orders'], password: { algorithm: 'scrypt', N: 16384, r: 8, p: 1, salt: String, hash: String } });
  t.notMatch(JSON.stringify(row), /wendy-password/);
  t.notOk(first.listTables().filter((table) => !table.name.startsWith('_')).length, 'no user table was made');
  await first.close();

  const second = await openDatabase({ dataDir });
  t.teardown(() => second.close());
  const reopened = await openUsers(second, dataDir, 'ignored-now');
  t.same(reopened.created, [], 'nothing is bootstrapped twice');
  t.same(reopened.store.list().map((user) => [user.username, user.roles, user.grants]), [['admin', ['admin'], undefined], ['wendy', ['writer'], ['orders']]]);
  t.equal(await reopened.store.verify('admin', 'ignored-now'), null, 'DRIFTDB_ADMIN_PASSWORD matters only on the first start');
});

t.test('a users.json of an earlier version is migrated once, with its hashes, and renamed', async (t) => {
  const { db, dataDir } = await database(t);
  const hash = await hashPassword('old-admin-password');
  const legacy = { version: 1, users: [{ username: 'admin', roles: ['admin'], password: hash, createdAt: '2025-01-01T00:00:00.000Z' }] };
  fs.writeFileSync(path.join(dataDir, legacyUsersFileName), JSON.stringify(legacy), { mode: 0o600 });
  const opened = await openUsers(db, dataDir, 'would-be-new');
  t.equal(opened.migrated, 1);
  t.same(opened.created, []);
  t.ok(await opened.store.verify('admin', 'old-admin-password'), 'the admin keeps their password');
  t.equal(await opened.store.verify('admin', 'would-be-new'), null);
  t.notOk(fs.existsSync(path.join(dataDir, legacyUsersFileName)), 'users.json is no longer there');
  t.ok(fs.existsSync(path.join(dataDir, migratedUsersFileName)), 'it was kept under another name');
  t.equal(fs.statSync(path.join(dataDir, migratedUsersFileName)).mode & 0o777, 0o600);
});

t.test('the last admin can be neither deleted nor demoted; bad names, roles and grants are refused', async (t) => {
  const { db, dataDir } = await database(t);
  const { store } = await openUsers(db, dataDir, 'admin-password');
  await t.rejects(store.remove('admin'), { code: 'bad_request', message: /last admin/ });
  await t.rejects(store.setAccess('admin', { roles: ['reader'] }), { code: 'bad_request' });
  await store.create({ username: 'second', password: 'second-password', roles: ['admin'] });
  await store.setAccess('admin', { roles: ['reader'] });
  t.same(store.get('admin')!.roles, ['reader'], 'with another admin it may go');
  await t.rejects(store.create({ username: 'second', password: 'x-password', roles: ['reader'] }), { code: 'validation_failed', message: /exists/ });
  await t.rejects(store.create({ username: 'bad name', password: 'x-password', roles: ['reader'] }), { code: 'validation_failed' });
  await t.rejects(store.create({ username: 'r', password: 'x-password', roles: [] }), { code: 'validation_failed' });
  await t.rejects(store.create({ username: 'r', password: 'x-password', roles: ['admin'], grants: ['t'] }), { code: 'validation_failed', message: /admin/ });
  await t.rejects(store.create({ username: 'r', password: 'x-password', roles: ['reader'], grants: ['_users'] }), { code: 'validation_failed' });
  await t.rejects(store.remove('nobody'), { code: 'not_found' });
});

t.test('tokens: only the hash is stored, they survive a restart, and revocation is durable', async (t) => {
  const dataDir = t.testdir();
  const db = await openDatabase({ dataDir });
  const tokens = await TokenStore.open({ db, ttlMs: 60_000, onSweepError: (error) => t.fail(String(error)) });
  const { token, record } = await tokens.issue('ann');
  t.match(token, tokenPattern);
  t.equal(record.id, tokenId(token));
  t.notMatch(JSON.stringify(db.get({ table: systemTables.tokens.name, key: record.id }).doc), token.slice(4));
  const second = await tokens.issue('ann');
  await tokens.revoke(second.record);
  tokens.close();
  await db.close();

  const reopened = await openDatabase({ dataDir });
  t.teardown(() => reopened.close());
  const again = await TokenStore.open({ db: reopened, ttlMs: 60_000, onSweepError: (error) => t.fail(String(error)) });
  t.teardown(() => again.close());
  t.match(again.lookup(token), { kind: 'valid', record: { username: 'ann' } });
  t.same(again.lookup(second.token), { kind: 'unknown' }, 'a revoked token stays revoked');
  t.same(again.lookup('ddb_' + 'A'.repeat(43)), { kind: 'unknown' });
  t.same(again.lookup('not a token'), { kind: 'unknown' });
});

t.test('an expired token is reported once, then unknown, and the sweep deletes its row', async (t) => {
  const { db } = await database(t);
  let now = 1_000_000;
  const tokens = await TokenStore.open({ db, ttlMs: 1000, now: () => now, onSweepError: (error) => t.fail(String(error)) });
  t.teardown(() => tokens.close());
  const { token, record } = await tokens.issue('ann');
  const other = await tokens.issue('bob');
  now += 999;
  t.equal(tokens.lookup(token).kind, 'valid');
  now += 1;
  t.equal(tokens.lookup(token).kind, 'expired');
  t.equal(tokens.lookup(token).kind, 'unknown');
  t.equal(tokens.size, 1, 'bob\'s expired token was not looked up yet');
  await tokens.sweep();
  t.equal(tokens.size, 0, 'the sweep drops it too');
  for (const id of [record.id, other.record.id]) {
    t.throws(() => db.get({ table: systemTables.tokens.name, key: id }), { code: 'row_not_found' }, 'the row is gone');
  }
});

t.test(`a user holds at most ${tokensPerUserMax} tokens: one more revokes the oldest`, async (t) => {
  const { db } = await database(t);
  let now = 1_000_000;
  const tokens = await TokenStore.open({ db, ttlMs: 3_600_000, now: () => now++, onSweepError: (error) => t.fail(String(error)) });
  t.teardown(() => tokens.close());
  const issued = [];
  for (let i = 0; i <= tokensPerUserMax; i++) issued.push((await tokens.issue('ann')).token);
  t.equal(tokens.lookup(issued[0]!).kind, 'unknown', 'the oldest was revoked');
  t.equal(tokens.lookup(issued[1]!).kind, 'valid');
  t.equal(tokens.lookup(issued.at(-1)!).kind, 'valid');
  t.equal(await tokens.revokeUser('ann'), tokensPerUserMax);
  t.equal(tokens.size, 0);
});

t.test('lockout: the threshold-th failure within the window locks the name for the lockout time', async (t) => {
  let now = 0;
  const guard = new LoginGuard({ threshold: 3, windowMs: 1000, lockoutMs: 5000, now: () => now });
  t.notOk(guard.recordFailure('ann'));
  now = 600;
  t.notOk(guard.recordFailure('ann'));
  now = 1100;
  t.notOk(guard.recordFailure('ann'), 'the first failure left the window');
  t.equal(guard.lockedUntil('ann'), null);
  t.ok(guard.recordFailure('ann'), 'the third within the window locks');
  t.equal(guard.lockedUntil('ann'), 6100);
  t.equal(guard.lockedUntil('bob'), null, 'per username');
  now = 6100;
  t.equal(guard.lockedUntil('ann'), null, 'and it ends');
  t.ok(guard.recordFailure('nobody') === false && guard.recordFailure('nobody') === false && guard.recordFailure('nobody'), 'unknown names lock the same way');
  t.ok(guard.unlock('nobody'));
  t.notOk(guard.unlock('nobody'), 'unlocking twice: it was not locked');
  guard.recordFailure('carl');
  guard.recordSuccess('carl');
  t.notOk(guard.recordFailure('carl') || guard.recordFailure('carl'), 'a success forgets earlier failures');
});

t.test('lockout tracks a bounded number of names', async (t) => {
  const guard = new LoginGuard({ threshold: 2, windowMs: 1000, lockoutMs: 1000, trackedMax: 3 });
  for (const name of ['a', 'b', 'c', 'd']) guard.recordFailure(name);
  t.ok(guard.recordFailure('d'), 'd is tracked: its second failure locks');
  t.notOk(guard.recordFailure('a'), 'a was forgotten: this is its first failure again');
});
